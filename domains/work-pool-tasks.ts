// The tasks Docket's work pool (domains/work-pool.ts) runs on its threads: work whose cost the caller's input
// sets. Each is the function the rest of Docket calls in-thread; a thrown error travels back by class name.
import { taskRunner } from '../lib/work-pool';
import { checkCampaignContent, renderCampaignBatch } from './campaigns/templates';
import { checkTemplate, renderTemplate } from './documents/templates';
import { checkNotificationParts, renderNotificationParts } from './notifications/templates';
import { firstTrigger, previewTriggers } from './reminders/preview';

export const tasks = { renderTemplate, checkTemplate, previewTriggers, firstTrigger, checkCampaignContent, renderCampaignBatch, checkNotificationParts, renderNotificationParts };
export type Tasks = typeof tasks;

export default taskRunner(tasks);
