/**
 * XEP-0202 Entity Time of the server: its UTC offset and the UTC time, in the XEP-0082
 * formats (TZD `±hh:mm`, dateTime with milliseconds, which XEP-0082 allows).
 */
import { z } from 'zod';
import { defineModule } from '../api.ts';
import { el } from '../../xml/element.ts';

export const NS_TIME = 'urn:xmpp:time';

/** XEP-0082 TZD of the offset in effect at `date` (local time minus UTC), e.g. "-06:00". */
export function tzo(date: Date): string {
  const minutes = -date.getTimezoneOffset();
  const abs = Math.abs(minutes);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${minutes < 0 ? '-' : '+'}${hh}:${mm}`;
}

export default defineModule({
  name: 'time',
  config: z.object({}).strict(),
  setup(ctx) {
    ctx.addFeature(NS_TIME);
    ctx.handleIq({ xmlns: NS_TIME, element: 'time', type: 'get', target: 'host' }, () => {
      const now = new Date();
      return el('time', { xmlns: NS_TIME }, el('tzo', {}, tzo(now)), el('utc', {}, now.toISOString()));
    });
  },
});
