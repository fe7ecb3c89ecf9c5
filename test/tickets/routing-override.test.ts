import { describe, expect, it } from 'vitest';
import type { Routing } from '../../src/tickets/port.js';
import { routingOverride } from '../../src/tickets/service.js';

const base: Routing = {
  project: 'Ops',
  ticketType: 'Bug',
  areaPath: 'Ops\\Cloud',
  iterationPath: 'Ops\\Sprint 1',
  priorityMap: { critical: '1' },
  fieldValues: { 'Custom.CostCenter': 'FinOps' },
};

describe('routingOverride (a subscription chooses project and type)', () => {
  it('keeps the provider routing when the subscription chose nothing or the same', () => {
    expect(routingOverride({}, base)).toBe(base);
    expect(routingOverride(null, base)).toBe(base);
    expect(routingOverride({ project: 'Ops', ticketType: 'Bug' }, base)).toBe(base);
    expect(routingOverride({ project: '', ticketType: 42 }, base)).toBe(base);
  });

  it('another type keeps area and iteration but not the required field values of the old type', () => {
    expect(routingOverride({ ticketType: 'Task' }, base)).toEqual({
      project: 'Ops',
      ticketType: 'Task',
      areaPath: 'Ops\\Cloud',
      iterationPath: 'Ops\\Sprint 1',
      priorityMap: { critical: '1' },
    });
  });

  it("another project drops the old project's paths and field values", () => {
    expect(routingOverride({ project: 'FinOps' }, base)).toEqual({
      project: 'FinOps',
      ticketType: 'Bug',
      priorityMap: { critical: '1' },
    });
  });
});
