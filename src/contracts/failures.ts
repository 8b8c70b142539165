/**
 * Why an export can fail for good: the ApplicationFailure types its activities throw when a retry
 * cannot help. The API answers a failed job from its cause: the data or the request's fault is
 * 422, the service's 500; either way the OperationOutcome names the cause. A leaf.
 */

/** A view cannot be evaluated on a resource (a plain column with several values, ...). */
export { VIEW_EVALUATION_FAILURE } from './view-export';
/** A stored resource cannot be read (its body is not JSON). */
export const BAD_RESOURCE_FAILURE = 'BadResource';
/** The output store refuses for good (a bucket that no longer exists, a directory not writable). */
export const OUTPUT_UNAVAILABLE_FAILURE = 'OutputUnavailable';
