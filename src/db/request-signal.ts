/** A job dropped before it ran because the client that asked for it had gone. */
export class ClientGoneError extends Error {
  override name = "ClientGoneError";
  constructor() {
    super("The client went away before this work started; it was not done.");
  }
}
