/** Weak ETags from a row's version number, and If-Match / If-None-Match lists. */

export const etagOf = (row: Record<string, unknown>) => `W/"${String(row.versionnumber)}"`;

/** Whether a comma list of ETags (an If-Match or If-None-Match value) names `etag`. */
export const etagListIncludes = (header: string, etag: string) => header.split(",").some((item) => item.trim() === etag);
