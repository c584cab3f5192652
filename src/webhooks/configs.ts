import type { WebhookRef } from "../store/cluster-types.js";
import type { WebhookConfig } from "../store/types.js";

/**
 * The webhook configurations as this node knows them (table → name → configuration): what the registry
 * loaded from the store and changed since, and, with several nodes, what it read again of the others'
 * changes. A table keeps its (empty) entry when its last webhook is deleted, until forgetTable().
 */
export class WebhookConfigs {
  private readonly byTable = new Map<string, Map<string, WebhookConfig>>();
  /** Counts changes made here (remember, delete): a read of the store that one overlapped is stale. */
  private changes = 0;

  get generation(): number {
    return this.changes;
  }

  get(table: string, name: string): WebhookConfig | undefined {
    return this.byTable.get(table)?.get(name);
  }

  /** The table's webhooks, by name. */
  of(table: string): WebhookConfig[] {
    return [...(this.byTable.get(table)?.values() ?? [])].sort(byName);
  }

  count(table: string): number {
    return this.byTable.get(table)?.size ?? 0;
  }

  hasTable(table: string): boolean {
    return this.byTable.has(table);
  }

  tables(): string[] {
    return [...this.byTable.keys()];
  }

  *all(): IterableIterator<WebhookConfig> {
    for (const byName of this.byTable.values()) yield* byName.values();
  }

  remember(config: WebhookConfig): void {
    let byName = this.byTable.get(config.table);
    if (!byName) this.byTable.set(config.table, (byName = new Map()));
    byName.set(config.name, config);
    this.changes++;
  }

  /** False when it was not known. */
  delete(table: string, name: string): boolean {
    this.changes++;
    return this.byTable.get(table)?.delete(name) ?? false;
  }

  /** Forgets the table and its webhooks; returns their names. */
  forgetTable(table: string): string[] {
    const names = [...(this.byTable.get(table)?.keys() ?? [])];
    this.byTable.delete(table);
    this.changes++;
    return names;
  }

  /** A first load: a stored configuration is taken unless one made here meanwhile is newer. */
  merge(stored: readonly WebhookConfig[]): void {
    for (const config of stored) {
      const known = this.get(config.table, config.name);
      if (!known || known.updatedAt < config.updatedAt) this.remember(config);
    }
  }

  /**
   * Makes the stored configurations the known ones (the store is the truth: another node may have changed
   * or deleted any). Returns those new or changed, and those no longer there (forgotten here).
   */
  replaceWith(stored: readonly WebhookConfig[]): { changed: WebhookConfig[]; gone: WebhookRef[] } {
    const changed: WebhookConfig[] = [];
    const seen = new Map<string, Set<string>>();
    for (const config of stored) {
      let names = seen.get(config.table);
      if (!names) seen.set(config.table, (names = new Set()));
      names.add(config.name);
      const known = this.get(config.table, config.name);
      if (known && sameConfig(known, config)) continue;
      this.remember(config);
      changed.push(config);
    }
    const gone: WebhookRef[] = [];
    for (const [table, byName] of this.byTable) {
      for (const name of [...byName.keys()]) {
        if (seen.get(table)?.has(name)) continue;
        byName.delete(name);
        gone.push({ table, name });
      }
    }
    if (gone.length > 0) this.changes++;
    return { changed, gone };
  }
}

function sameConfig(a: WebhookConfig, b: WebhookConfig): boolean {
  return (
    a.url === b.url &&
    a.batchSize === b.batchSize &&
    a.timeoutMs === b.timeoutMs &&
    a.secret === b.secret &&
    a.createdAt === b.createdAt &&
    a.updatedAt === b.updatedAt
  );
}

function byName(a: WebhookConfig, b: WebhookConfig): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
