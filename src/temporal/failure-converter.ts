/**
 * Failure messages and stack traces go into an encoded attribute, so the payload codec encrypts
 * them too: an error may quote a resource or a query. Loaded by path (`failureConverterPath`) in
 * the workflow sandbox as well as outside it, so it imports nothing but the SDK's common module.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
