// The kernel runtime's layout lives in arch/layout.ts (arch/ is the one source of numbers); the
// generator and the runners keep importing it from here.

export * from '../arch/layout.ts';
