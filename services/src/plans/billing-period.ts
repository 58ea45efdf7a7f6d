/**
 * The billing period containing `at`: calendar months counted from the team's anchor date, in UTC.
 * A period starts on the anchor's day of the month at the anchor's time of day; in a month without
 * that day (an anchor on the 31st in April, the 29th to 31st in February) it starts on the month's
 * last day. Never a 30-day constant.
 */
export function billingPeriod(anchor: Date, at: Date): { start: Date; end: Date } {
  const startIn = (year: number, month: number): Date => {
    const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
    return new Date(
      Date.UTC(
        year,
        month,
        Math.min(anchor.getUTCDate(), lastDay),
        anchor.getUTCHours(),
        anchor.getUTCMinutes(),
        anchor.getUTCSeconds(),
        anchor.getUTCMilliseconds(),
      ),
    );
  };
  let year = at.getUTCFullYear();
  let month = at.getUTCMonth();
  let start = startIn(year, month);
  if (start.getTime() > at.getTime()) {
    month -= 1;
    if (month < 0) {
      month = 11;
      year -= 1;
    }
    start = startIn(year, month);
  }
  const nextMonth = month === 11 ? 0 : month + 1;
  const nextYear = month === 11 ? year + 1 : year;
  return { start, end: startIn(nextYear, nextMonth) };
}
