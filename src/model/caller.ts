/** Who makes a request: recorded as owner / created by / modified by, and returned by WhoAmI. */
export interface Caller {
  userId: string;
  businessUnitId: string;
  organizationId: string;
  /**
   * Set for a channel provider's application user: the only msdyn_ciprovider whose
   * conversations, sessions, participants and KPI events it may write and read
   * (enforced in src/channel-analytics/, on every path).
   */
  providerId?: string;
}
