/**
 * SQL literals for statements that cannot take parameters (COPY, and the snapshot SQL built
 * around it), quoted by `pg` itself. Every value is still checked where it comes in (FHIR ids,
 * instants bulkflow produced); this is the quoting, in one place.
 */
import { escapeLiteral } from 'pg';

export const literal = (value: string): string => escapeLiteral(value);
export const instant = (value: string): string => `${literal(value)}::timestamptz`;
