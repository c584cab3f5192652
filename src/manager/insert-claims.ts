/**
 * Ids being inserted through this server, from before their INSERT is sent until it is over, and whether
 * a newer copy of each has turned up meanwhile.
 *
 * A committed row becomes visible to other statements before its INSERT's answer reaches us: a poll can
 * read it, deliver it, record the delivery and let go of it (discard) before the insert path offers its
 * own copy. That copy, taken before the delivery, must not be sent as well. So an id's claim is
 * superseded when a poll caches the row, or when it is acked or rescheduled; the insert path then drops
 * its copy. Concurrent inserts of one id (a client resending it) share a claim; one made after a
 * supersession starts a fresh claim.
 */
export class InsertClaims {
  private readonly claims = new Map<string, Claim>();

  /** Ids with a claim: being inserted, with no newer copy seen yet. */
  get size(): number {
    return this.claims.size;
  }

  /** Claims `ids` for one insert (call before its INSERT is sent). */
  begin(ids: Iterable<string>): Map<string, Claim> {
    const mine = new Map<string, Claim>();
    for (const id of ids) {
      if (mine.has(id)) continue;
      let claim = this.claims.get(id);
      if (claim) claim.holders++;
      else this.claims.set(id, (claim = { holders: 1, superseded: false }));
      mine.set(id, claim);
    }
    return mine;
  }

  /** A newer copy of these ids exists (a poll cached it, or it was acked or rescheduled). */
  supersede(ids: Iterable<string>): void {
    if (this.claims.size === 0) return;
    for (const id of ids) {
      const claim = this.claims.get(id);
      if (!claim) continue;
      claim.superseded = true;
      this.claims.delete(id);
    }
  }

  /** The insert holding `mine` is over: returns the ids whose claim still stands (no newer copy seen). */
  end(mine: Map<string, Claim>): Set<string> {
    const standing = new Set<string>();
    for (const [id, claim] of mine) {
      if (!claim.superseded) standing.add(id);
      if (--claim.holders === 0 && this.claims.get(id) === claim) this.claims.delete(id);
    }
    return standing;
  }
}

export interface Claim {
  holders: number;
  superseded: boolean;
}
