/** The parts `tollgate start` can run; a module of its own so commands can name them without loading them. */
export const components = ['api', 'gateway', 'worker'] as const;
export type Component = (typeof components)[number];
