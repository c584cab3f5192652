/** The tables tablemq keeps beside the message tables, in every store: never taken for message tables. */

/** Webhook configurations, one row per (table, webhook). */
export const WEBHOOKS_TABLE = "tablemq_webhooks";
