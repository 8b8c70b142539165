import pkg from '../package.json';

export const softwareVersion: string = pkg.version;
