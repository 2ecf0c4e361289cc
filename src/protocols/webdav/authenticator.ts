import type { Request } from 'express';
import { UnauthorizedError, type Authenticator as NepheleAuthenticator, type AuthResponse, type User } from 'nephele';
import type { AuthResult, Authenticator } from '../../auth/Authenticator.js';
import type { Principal } from '../../auth/principal.js';
import { GatewayError } from '../../shared/errors.js';
import { authenticateRequest } from '../http/auth.js';

/** nephele's user object, carrying who is acting for the adapter and the shared layer. */
export interface DavUser extends User {
  principal: Principal;
}

export const REALM = 'Handoff';

/** Results of authentications already done for a request in front of nephele (see quickPut). */
export const authenticatedBefore = new WeakMap<Request, AuthResult | null>();

/**
 * HTTP Basic (or a Bearer API token) through the shared Authenticator, which does lockout, the
 * verified-credential cache and dummy verifies. Missing or wrong credentials (and revoked or
 * expired recipients) get 401 with a challenge; a locked-out client gets 429.
 */
export class DavAuthenticator implements NepheleAuthenticator {
  constructor(private readonly auth: Authenticator) {}

  async authenticate(request: Request, response: AuthResponse): Promise<DavUser> {
    // A request the quick PUT looked at and left to nephele is authenticated once, not twice (lockout counts).
    const result = authenticatedBefore.has(request) ? authenticatedBefore.get(request)! : await authenticateRequest(this.auth, request, 'webdav');
    if (result?.ok) return { username: result.principal.name, principal: result.principal };
    if (result?.reason === 'locked') throw new GatewayError('rate_limited', 'too many failed attempts; try again later');
    response.set('WWW-Authenticate', `Basic realm="${REALM}", charset="UTF-8"`);
    throw new UnauthorizedError(result ? 'invalid credentials' : 'authentication required');
  }

  async cleanAuthentication(): Promise<void> {}
}

export function principalOf(user: User | undefined): Principal {
  const p = (user as DavUser | undefined)?.principal;
  if (!p) throw new UnauthorizedError('authentication required');
  return p;
}
