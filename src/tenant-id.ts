/** What a tenant id may be: it names a tenant in URLs (`/t/{tenant}/...`), store keys and file keys. A leaf. */
export const TENANT_ID = /^[a-z0-9][a-z0-9_-]{0,39}$/;
