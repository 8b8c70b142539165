/** The addresses global-setup handed to the tests. */
function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with \`npm test\` so jest's global setup starts the services`);
  return value;
}

export const testEnvironment = {
  get databaseUrl() {
    return required('TEST_DATABASE_URL');
  },
  get temporalAddress() {
    return required('TEST_TEMPORAL_ADDRESS');
  },
  get temporalNamespace() {
    return required('TEST_TEMPORAL_NAMESPACE');
  },
  get gcsEndpoint() {
    return required('TEST_GCS_ENDPOINT');
  },
  get gcsBucket() {
    return required('TEST_GCS_BUCKET');
  },
};
