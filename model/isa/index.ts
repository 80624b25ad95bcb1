// Every instruction group registers its semantics here (import for effect), then the registry
// answers the decoder. Groups follow the manual's grouping (APM vol. 3 ch. 3 and 4).
import './data.ts';
import './arith.ts';
import './logic.ts';
import './control.ts';
import './string.ts';
import './control-regs.ts';
import './segment-regs.ts';
import './msr.ts';
import './system.ts';
import './interrupts.ts';
import './svm.ts';

export { handlerFor, supportedMnemonics } from './registry.ts';
