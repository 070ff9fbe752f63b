/** The Content-Type of JSON bodies (shared/reference/dataverse-webapi.md §0). */
export const ODATA_JSON = "application/json; odata.metadata=minimal";
