/**
 * What a `$sql-run` or `$sql-export` subject names: a ViewDefinition, or a SQLQuery / SQLView
 * Library, inline or stored (by id or canonical `url|version`). Reading a stored one needs read
 * permission on its type; unknown is 404.
 */
import type { Context } from 'koa';
import { OperationOutcomeError } from '../fhir/outcome-error';
import type { ResourceStore } from '../store/resource-store';
import { findByCanonical } from '../store/stored-canonical';
import type { ViewSubject } from '../views/run-request';
import type { AppState } from './app-state';
import { mayAccess, requirePermission } from './authorize';

type AppContext = Context & { state: AppState };
type Json = Record<string, unknown>;

/** The subject's resource JSON. */
export async function viewOf(ctx: AppContext, store: ResourceStore, subject: ViewSubject): Promise<Json> {
  if ('resource' in subject) return subject.resource;
  if ('id' in subject) {
    const type = subject.type ?? 'ViewDefinition';
    requirePermission(ctx, type, 'r');
    const stored = await store.read(type, subject.id);
    if (!stored || stored.deleted || !stored.body) throw OperationOutcomeError.notFound(`${type}/${subject.id} is not known`);
    return JSON.parse(stored.body) as Json;
  }
  const canonical = `${subject.url}${subject.version ? `|${subject.version}` : ''}`;
  // A caller who may not read Libraries looks among ViewDefinitions only (a 404, not a 403, for a view it names wrong).
  const found =
    (await storedByCanonical(ctx, store, 'ViewDefinition', subject.url, subject.version)) ??
    (mayAccess(ctx, 'Library', 'r') ? await storedByCanonical(ctx, store, 'Library', subject.url, subject.version) : undefined);
  if (!found) throw OperationOutcomeError.notFound(`No ViewDefinition or Library has the canonical ${canonical}`);
  return found;
}

/**
 * The stored resource of `type` with this canonical (the only one, or the one of `version`);
 * undefined when none; two without a version to tell them apart is 400. Needs read permission.
 */
export async function storedByCanonical(ctx: AppContext, store: ResourceStore, type: 'ViewDefinition' | 'Library', url: string, version?: string): Promise<Json | undefined> {
  requirePermission(ctx, type, 'r');
  return findByCanonical(store, type, url, version);
}
