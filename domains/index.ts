// Every domain Docket runs, in one list: the database initialises their models, the workers serve their
// queues and activities, the API registers their routes. Adding a domain is one line here (and its
// workflows in workflows/index.ts, the bundle's entry).
import { approvals } from './approvals';
import { audience } from './audience';
import { audit } from './audit';
import { campaigns } from './campaigns';
import { documents } from './documents';
import { events } from './events';
import { files } from './files';
import { identity } from './identity';
import { imports } from './imports';
import { jobs } from './jobs';
import { notifications } from './notifications';
import { purchasing } from './purchasing';
import { reminders } from './reminders';
import { settings } from './settings';
import { system } from './system';
import { webhooks } from './webhooks';

export const DOMAINS = [identity, audit, files, approvals, purchasing, documents, reminders, jobs, audience, imports, settings, notifications, campaigns, events, webhooks, system] as const;

export type Domain = (typeof DOMAINS)[number];
