import { PropertyIsProtectedError, PropertyNotFoundError, type Properties } from 'nephele';
import { dav } from './errors.js';
import type { EventResource } from './resource.js';

type Value = string | object | object[];

/** Names as nephele spells them: DAV: properties by local name, others as `namespace%%local`. */
const LIVE = ['creationdate', 'getcontentlength', 'getcontenttype', 'getetag', 'getlastmodified', 'resourcetype', 'supportedlock'] as const;
const LIVE_SET = new Set<string>([...LIVE, 'lockdiscovery', 'quota-available-bytes', 'quota-used-bytes']);
const FOLDER_OMITS = new Set(['getcontentlength', 'getcontenttype']);
/** Windows Explorer sets the modification time through this one (Finder and others through X-OC-Mtime or not at all). */
const WIN32_MTIME = 'urn:schemas-microsoft-com:%%Win32LastModifiedTime';

export const SUPPORTED_LOCK = {
  lockentry: [
    { lockscope: { exclusive: {} }, locktype: { write: {} } },
    { lockscope: { shared: {} }, locktype: { write: {} } },
  ],
};

function textOf(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && '_' in v && typeof (v as { _: unknown })._ === 'string') return (v as { _: string })._;
  return null;
}

/** Live properties from the file row; dead ones (any client namespace) from the database, values kept as nephele parsed them. */
export class EventProperties implements Properties {
  constructor(readonly resource: EventResource) {}

  private async live(name: string): Promise<Value | undefined> {
    const r = this.resource;
    const folder = await r.isCollection();
    const node = r.node;
    if (folder && FOLDER_OMITS.has(name)) return undefined;
    switch (name) {
      case 'creationdate':
        return new Date(node?.created ?? 0).toISOString();
      case 'getcontentlength':
        return String(node?.size ?? 0);
      case 'getcontenttype':
        return 'application/octet-stream';
      case 'getetag':
        return `"${await r.getEtag()}"`;
      case 'getlastmodified':
        return new Date(node?.mtime ?? 0).toUTCString();
      case 'resourcetype':
        return folder ? { collection: {} } : {};
      case 'supportedlock':
        return SUPPORTED_LOCK;
      default:
        return undefined;
    }
  }

  /** RFC 4331 quota of the event, on folders: Finder and Explorer show it and check copies against it. Not part of allprop. */
  private async quota(name: string): Promise<string | undefined> {
    if (name !== 'quota-available-bytes' && name !== 'quota-used-bytes') return undefined;
    if (!(await this.resource.isCollection())) return undefined;
    const e = (await this.resource.adapter.session()).event;
    return String(name === 'quota-used-bytes' ? e.used_bytes : Math.max(0, e.quota_bytes - e.used_bytes - e.reserved_bytes));
  }

  private dead(): Promise<Map<string, string>> {
    return this.resource.adapter.propertiesOf(this.resource.fileId);
  }

  async get(name: string): Promise<Value> {
    const live = (await this.live(name)) ?? (await this.quota(name));
    if (live !== undefined) return live;
    const raw = (await this.dead()).get(name);
    if (raw === undefined) throw new PropertyNotFoundError(`${name} not found`);
    return JSON.parse(raw) as Value;
  }

  getByUser(name: string): Promise<Value> {
    return this.get(name);
  }

  async set(name: string, value: Value | undefined): Promise<void> {
    const errors = await this.runInstructions([['set', name, value]]);
    if (errors?.length) throw errors[0][1];
  }

  setByUser(name: string, value: Value | undefined): Promise<void> {
    return this.set(name, value);
  }

  async remove(name: string): Promise<void> {
    const errors = await this.runInstructions([['remove', name, undefined]]);
    if (errors?.length) throw errors[0][1];
  }

  removeByUser(name: string): Promise<void> {
    return this.remove(name);
  }

  /** All or nothing: one protected name fails the whole PROPPATCH (RFC 4918 §9.2). */
  async runInstructions(instructions: ['set' | 'remove', string, unknown][]): Promise<undefined | [string, Error][]> {
    const refused: [string, Error][] = instructions
      .filter(([, name]) => LIVE_SET.has(name))
      .map(([, name]) => [name, new PropertyIsProtectedError(`${name} is a protected property`)]);
    if (refused.length) return refused;
    const session = await this.resource.adapter.session();
    const meta = session.metadata();
    await dav(() => meta.patchProperties(this.resource.fileId, instructions.map(([op, name, value]) => ({ name, value: op === 'set' ? JSON.stringify(value ?? '') : null }))));
    this.resource.adapter.forgetMetadata();
    const mtime = instructions.find(([op, name]) => op === 'set' && name === WIN32_MTIME);
    const when = mtime ? Date.parse(textOf(mtime[2]) ?? '') : NaN;
    if (Number.isFinite(when) && this.resource.path !== '') await dav(() => session.setMtime(this.resource.path, when));
    return undefined;
  }

  runInstructionsByUser(instructions: ['set' | 'remove', string, unknown][]): Promise<undefined | [string, Error][]> {
    return this.runInstructions(instructions);
  }

  async getAll(): Promise<Record<string, Value>> {
    const out: Record<string, Value> = {};
    for (const name of LIVE) {
      const v = await this.live(name);
      if (v !== undefined) out[name] = v;
    }
    for (const [name, raw] of await this.dead()) out[name] = JSON.parse(raw) as Value;
    return out;
  }

  getAllByUser(): Promise<Record<string, Value>> {
    return this.getAll();
  }

  async list(): Promise<string[]> {
    return [...(await this.listLive()), ...(await this.listDead())];
  }

  listByUser(): Promise<string[]> {
    return this.list();
  }

  async listLive(): Promise<string[]> {
    const folder = await this.resource.isCollection();
    return LIVE.filter((n) => !(folder && FOLDER_OMITS.has(n)));
  }

  listLiveByUser(): Promise<string[]> {
    return this.listLive();
  }

  async listDead(): Promise<string[]> {
    return [...(await this.dead()).keys()];
  }

  listDeadByUser(): Promise<string[]> {
    return this.listDead();
  }
}
