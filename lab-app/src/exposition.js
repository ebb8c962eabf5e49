// Prometheus text exposition format 0.0.4: just enough to write gauges, counters and histograms.
// https://prometheus.io/docs/instrumenting/exposition_formats/

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function escapeHelp(text) {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabelValue(value) {
  return String(value).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function formatValue(value) {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function formatLabels(labels) {
  const pairs = Object.entries(labels ?? {});
  if (pairs.length === 0) return '';
  return `{${pairs.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(',')}}`;
}

// family: { name, help, type: 'gauge' | 'counter' | 'histogram', samples: [{ suffix?, labels?, value }] }
// A family with no samples still gets its HELP and TYPE lines, which the format allows.
export function renderFamily({ name, help, type, samples }) {
  const lines = [`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`];
  for (const { suffix = '', labels, value } of samples) {
    lines.push(`${name}${suffix}${formatLabels(labels)} ${formatValue(value)}`);
  }
  return `${lines.join('\n')}\n`;
}

// A cumulative histogram, one series per combination of label values.
export class Histogram {
  constructor(labelNames, buckets) {
    this.labelNames = labelNames;
    this.buckets = buckets;
    this.series = new Map();
  }

  observe(labels, value) {
    const key = JSON.stringify(this.labelNames.map((name) => String(labels[name])));
    let series = this.series.get(key);
    if (!series) {
      series = { labels, counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(key, series);
    }
    for (let i = 0; i < this.buckets.length; i += 1) {
      if (value <= this.buckets[i]) series.counts[i] += 1;
    }
    series.sum += value;
    series.count += 1;
  }

  samples() {
    const samples = [];
    for (const { labels, counts, sum, count } of this.series.values()) {
      this.buckets.forEach((le, i) => {
        samples.push({ suffix: '_bucket', labels: { ...labels, le: formatValue(le) }, value: counts[i] });
      });
      samples.push({ suffix: '_bucket', labels: { ...labels, le: '+Inf' }, value: count });
      samples.push({ suffix: '_sum', labels, value: sum });
      samples.push({ suffix: '_count', labels, value: count });
    }
    return samples;
  }
}
