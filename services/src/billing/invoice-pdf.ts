import type { Invoice } from './invoices.js';
import { formatMoney } from './money.js';

/**
 * Our invoice as a PDF (PDF 1.4, ISO 32000-1 sections 7 and 9): text objects in the standard
 * Helvetica fonts with WinAnsiEncoding, so no font is embedded and no dependency is needed. One page
 * per 40 lines; the totals on the last page. Rendered from our stored invoice, never from Stripe's.
 */

/** WinAnsiEncoding codes of the characters beyond ASCII that an invoice prints. */
const winAnsi: Record<string, number> = { '€': 0x80, '£': 0xa3, '–': 0x96, '—': 0x97 };

/** A PDF literal string: backslash, parentheses escaped; non-ASCII as WinAnsi octal escapes or '?'. */
function pdfString(text: string): string {
  let out = '';
  for (const char of text) {
    if (char === '\\' || char === '(' || char === ')') out += `\\${char}`;
    else if (char.charCodeAt(0) >= 32 && char.charCodeAt(0) < 127) out += char;
    else {
      const code = winAnsi[char];
      out += code === undefined ? '?' : `\\${code.toString(8).padStart(3, '0')}`;
    }
  }
  return `(${out})`;
}

interface Text {
  x: number;
  y: number;
  size: number;
  bold?: boolean;
  text: string;
  /** right-aligned at x (approximate width: Helvetica's average 0.5 em per character) */
  right?: boolean;
}

function content(texts: Text[]): string {
  return texts
    .map((t) => {
      const x = t.right ? t.x - t.text.length * t.size * 0.5 : t.x;
      return `BT /${t.bold ? 'F2' : 'F1'} ${t.size} Tf ${x.toFixed(1)} ${t.y} Td ${pdfString(t.text)} Tj ET`;
    })
    .join('\n');
}

const linesPerPage = 40;
const day = (date: Date) => date.toISOString().slice(0, 10);

export function renderInvoicePdf(invoice: Invoice): Buffer {
  const money = (minor: bigint) => formatMoney(minor, invoice.currency);
  const title = invoice.kind === 'credit_note' ? 'Credit note' : 'Invoice';
  const pages: Text[][] = [];
  const chunks: Invoice['lines'][] = [];
  for (let i = 0; i < Math.max(invoice.lines.length, 1); i += linesPerPage) {
    chunks.push(invoice.lines.slice(i, i + linesPerPage));
  }
  for (const [index, chunk] of chunks.entries()) {
    const texts: Text[] = [
      { x: 50, y: 790, size: 20, bold: true, text: `${title} ${invoice.number}` },
      { x: 50, y: 765, size: 10, text: `Team: ${invoice.teamName}` },
      { x: 50, y: 750, size: 10, text: `Period: ${day(invoice.periodStart)} to ${day(invoice.periodEnd)}` },
      { x: 50, y: 735, size: 10, text: `Status: ${invoice.status}   Currency: ${invoice.currency}` },
      {
        x: 50,
        y: 720,
        size: 10,
        text: `Issued: ${invoice.finalizedAt ? day(invoice.finalizedAt) : 'draft'}${invoice.paidAt ? `   Paid: ${day(invoice.paidAt)}` : ''}`,
      },
      { x: 50, y: 690, size: 10, bold: true, text: 'Description' },
      { x: 400, y: 690, size: 10, bold: true, text: 'Quantity', right: true },
      { x: 545, y: 690, size: 10, bold: true, text: 'Amount', right: true },
    ];
    let y = 672;
    for (const line of chunk) {
      texts.push(
        { x: 50, y, size: 9, text: line.description.slice(0, 62) },
        { x: 400, y, size: 9, text: line.quantity.toString(), right: true },
        { x: 545, y, size: 9, text: money(line.amountMinor), right: true },
      );
      y -= 14;
    }
    if (index === chunks.length - 1) {
      y -= 10;
      const totals: [string, bigint][] = [
        ['Subtotal', invoice.subtotalMinor],
        ['Credits applied', -invoice.creditsAppliedMinor],
        ['Tax', invoice.taxMinor],
      ];
      for (const [label, amount] of totals) {
        texts.push(
          { x: 400, y, size: 10, text: label, right: true },
          { x: 545, y, size: 10, text: money(amount), right: true },
        );
        y -= 15;
      }
      texts.push(
        { x: 400, y, size: 12, bold: true, text: 'Total', right: true },
        { x: 545, y, size: 12, bold: true, text: money(invoice.totalMinor), right: true },
      );
    }
    texts.push({ x: 545, y: 40, size: 8, text: `Page ${index + 1} of ${chunks.length}`, right: true });
    pages.push(texts);
  }

  // Objects: 1 catalog, 2 pages, 3 Helvetica, 4 Helvetica-Bold, then a page and its content per page.
  const objects: string[] = [];
  const pageIds = pages.map((_, i) => 5 + i * 2);
  objects[1] = '<< /Type /Catalog /Pages 2 0 R >>';
  objects[2] = `<< /Type /Pages /Kids [${pageIds.map((id) => `${id} 0 R`).join(' ')}] /Count ${pages.length} >>`;
  objects[3] = '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>';
  objects[4] = '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>';
  for (const [i, texts] of pages.entries()) {
    const stream = content(texts);
    objects[5 + i * 2] =
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents ${6 + i * 2} 0 R >>`;
    objects[6 + i * 2] = `<< /Length ${Buffer.byteLength(stream, 'latin1')} >>\nstream\n${stream}\nendstream`;
  }
  let pdf = '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n';
  const offsets: number[] = [];
  for (let id = 1; id < objects.length; id++) {
    offsets[id] = Buffer.byteLength(pdf, 'latin1');
    pdf += `${id} 0 obj\n${objects[id]}\nendobj\n`;
  }
  const xref = Buffer.byteLength(pdf, 'latin1');
  pdf += `xref\n0 ${objects.length}\n0000000000 65535 f \n`;
  for (let id = 1; id < objects.length; id++) pdf += `${String(offsets[id]).padStart(10, '0')} 00000 n \n`;
  pdf += `trailer\n<< /Size ${objects.length} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(pdf, 'latin1');
}
