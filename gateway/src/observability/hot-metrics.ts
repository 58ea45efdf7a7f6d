import type { Registry } from 'prom-client';

/**
 * Counters and histograms for the gateway's hot path. prom-client checks and hashes the label set
 * on every `inc` and `observe`, even through a labelled child: a few hundred bytes and a string
 * hash per call, which at tens of thousands of calls a second shows in the GC pauses at p99. Here a
 * series is looked up once (`series(...)`) and counting is a few additions on a plain object; the
 * text Prometheus scrapes is built from those numbers only when it is asked for, in prom-client's
 * own format (these objects register in a prom-client Registry like its own metrics).
 */
type Labels = Record<string, string>;

interface MetricValue {
  labels: Labels;
  value: number;
  metricName?: string;
}

abstract class HotMetric<Cell> {
  readonly aggregator = 'sum';
  protected readonly cells = new Map<string, { labels: Labels; cell: Cell }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    private readonly labelNames: readonly string[],
  ) {}

  protected abstract fresh(): Cell;
  protected abstract values(labels: Labels, cell: Cell): MetricValue[];

  /** The series of these label values, in `labelNames` order; keep it rather than asking per call. */
  series(...values: string[]): Cell {
    const key = values.join('\u0000');
    let entry = this.cells.get(key);
    if (!entry) {
      const labels: Labels = {};
      this.labelNames.forEach((name, index) => {
        labels[name] = values[index] ?? '';
      });
      entry = { labels, cell: this.fresh() };
      this.cells.set(key, entry);
    }
    return entry.cell;
  }

  /** What prom-client's Registry reads when it writes the exposition text. */
  get(): { name: string; help: string; type: string; values: MetricValue[]; aggregator: string } {
    const values: MetricValue[] = [];
    for (const { labels, cell } of this.cells.values()) values.push(...this.values(labels, cell));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    this.cells.clear();
  }
}

export interface CounterSeries {
  value: number;
}

export class HotCounter extends HotMetric<CounterSeries> {
  constructor(options: { name: string; help: string; labelNames: readonly string[] }) {
    super(options.name, options.help, 'counter', options.labelNames);
  }

  protected fresh(): CounterSeries {
    return { value: 0 };
  }

  protected values(labels: Labels, cell: CounterSeries): MetricValue[] {
    return [{ labels, value: cell.value }];
  }
}

export class HistogramSeries {
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let index = 0;
    while (index < bounds.length && value > (bounds[index] as number)) index++;
    this.counts[index] = (this.counts[index] ?? 0) + 1;
    this.sum += value;
    this.count += 1;
  }
}

export class HotHistogram extends HotMetric<HistogramSeries> {
  readonly buckets: readonly number[];

  constructor(options: { name: string; help: string; labelNames: readonly string[]; buckets: readonly number[] }) {
    super(options.name, options.help, 'histogram', options.labelNames);
    this.buckets = [...options.buckets].sort((a, b) => a - b);
  }

  protected fresh(): HistogramSeries {
    return new HistogramSeries(this.buckets);
  }

  protected values(labels: Labels, cell: HistogramSeries): MetricValue[] {
    const out: MetricValue[] = [];
    let cumulative = 0;
    this.buckets.forEach((bound, index) => {
      cumulative += cell.counts[index] ?? 0;
      out.push({ labels: { ...labels, le: String(bound) }, value: cumulative, metricName: `${this.name}_bucket` });
    });
    out.push({ labels: { ...labels, le: '+Inf' }, value: cell.count, metricName: `${this.name}_bucket` });
    out.push({ labels, value: cell.sum, metricName: `${this.name}_sum` });
    out.push({ labels, value: cell.count, metricName: `${this.name}_count` });
    return out;
  }
}

/** Registers `create()` in the registry unless a metric of that name is there already (then returns it). */
export function registerOnce<T extends HotMetric<unknown>>(registry: Registry, name: string, create: () => T): T {
  const existing = registry.getSingleMetric(name) as unknown as T | undefined;
  if (existing) return existing;
  const metric = create();
  registry.registerMetric(metric as never);
  return metric;
}
