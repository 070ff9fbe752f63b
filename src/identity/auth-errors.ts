/**
 * 401s a client can act on (issue 11): Dataverse's codes in a JSON body, so
 * `dynamics-web-api` shows a message instead of "Unexpected Error", and a
 * `WWW-Authenticate` challenge naming where to get a token and for what resource,
 * as Microsoft's own clients discover the authority.
 */
import { ODataError } from "../odata/errors.js";

export const AuthErrorCodes = {
  notAuthenticated: "0x80044302",
  expired: "0x8005F101",
  badToken: "0x8004A102",
} as const;

export interface Challenge {
  authorizationUri: string;
  resourceId: string;
}

const challengeHeader = ({ authorizationUri, resourceId }: Challenge, invalidToken: boolean) =>
  `Bearer authorization_uri=${authorizationUri}, resource_id=${resourceId}${invalidToken ? ', error="invalid_token"' : ""}`;

/** No credentials at all. */
export const notAuthenticated = (challenge: Challenge) =>
  new ODataError(
    401,
    AuthErrorCodes.notAuthenticated,
    "The request is not authenticated: send Authorization: Bearer <access token>.",
    {
      "www-authenticate": challengeHeader(challenge, false),
    },
  );

/** A token, or an Authorization header, that cannot be trusted; `reason` says what was wrong, never the token. */
export const badToken = (challenge: Challenge, reason: string) =>
  new ODataError(401, AuthErrorCodes.badToken, `The access token is not valid: ${reason}`, {
    "www-authenticate": challengeHeader(challenge, true),
  });

export const expiredToken = (challenge: Challenge) =>
  new ODataError(401, AuthErrorCodes.expired, "The access token has expired; get a new one.", {
    "www-authenticate": challengeHeader(challenge, true),
  });
