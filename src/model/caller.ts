/** Who makes a request: recorded as owner / created by / modified by, and returned by WhoAmI. */
export interface Caller {
  userId: string;
  businessUnitId: string;
  organizationId: string;
}
