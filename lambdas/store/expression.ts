/**
 * Builds DynamoDB expressions with every path segment and value aliased, so map keys taken from
 * outside (line ids, refund ids) and reserved words (`lines`, `state`) are always safe.
 */
export class ExpressionBuilder {
  readonly names: Record<string, string> = {};
  readonly values: Record<string, unknown> = {};
  private readonly nameIndex = new Map<string, string>();
  private valueCount = 0;

  /** `#n0.#n1.#n2` for the segments `refunds`, `<refundId>`, `state`. */
  path(...segments: string[]): string {
    return segments.map((segment) => this.name(segment)).join('.');
  }

  value(value: unknown): string {
    const alias = `:v${this.valueCount++}`;
    this.values[alias] = value;
    return alias;
  }

  private name(segment: string): string {
    let alias = this.nameIndex.get(segment);
    if (!alias) {
      alias = `#n${this.nameIndex.size}`;
      this.nameIndex.set(segment, alias);
      this.names[alias] = segment;
    }
    return alias;
  }
}
