import { GatewayError } from '../shared/errors.js';
import type { Principal } from './principal.js';

/** Everything a principal can ask for. File actions act inside one event; `manage` changes the event itself. */
export type Action = 'list' | 'read' | 'write' | 'delete' | 'rename' | 'mkdir' | 'lock' | 'manage';

export interface EventRef {
  id: string;
  owner_id: number;
}

type Rule = 'always' | 'owner' | 'member' | 'never';

/** The whole permission model in one table. FileSession and EventService are its only callers. */
const TABLE: Record<Principal['kind'], Record<Action, Rule>> = {
  admin: { list: 'always', read: 'always', write: 'always', delete: 'always', rename: 'always', mkdir: 'always', lock: 'always', manage: 'always' },
  sender: { list: 'owner', read: 'owner', write: 'owner', delete: 'owner', rename: 'owner', mkdir: 'owner', lock: 'owner', manage: 'owner' },
  recipient: { list: 'member', read: 'member', write: 'never', delete: 'never', rename: 'never', mkdir: 'never', lock: 'never', manage: 'never' },
};

export function allowed(principal: Principal, action: Action, event: EventRef): boolean {
  switch (TABLE[principal.kind][action]) {
    case 'always':
      return true;
    case 'owner':
      return principal.kind !== 'recipient' && event.owner_id === principal.id;
    case 'member':
      return principal.kind === 'recipient' && principal.eventId === event.id;
    case 'never':
      return false;
  }
}

/** Can this principal see the event at all? A recipient of another event must learn nothing. */
export function canSee(principal: Principal, event: EventRef): boolean {
  return allowed(principal, 'list', event);
}

export function authorize(principal: Principal, action: Action, event: EventRef): void {
  if (!allowed(principal, action, event)) {
    throw new GatewayError('forbidden', action === 'list' || action === 'read' ? 'no access to this event' : `${principal.kind}s may not ${action} here`);
  }
}

/** Creating events is not about an existing event: admins and senders may. */
export function authorizeCreate(principal: Principal): void {
  if (principal.kind === 'recipient') throw new GatewayError('forbidden', 'recipients may not create events');
}

/** Gateway-wide operator views (metrics): admins only. */
export function authorizeOperator(principal: Principal): void {
  if (principal.kind !== 'admin') throw new GatewayError('forbidden', 'admins only');
}
