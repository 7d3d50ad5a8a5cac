import { binaryFrameDecoders } from './binary-frames.ts';
import { controlFlowDecoders } from './control-flow.ts';
import type { DecoderFixture } from './fixture.ts';
import { jsonDecoders } from './json-and-lorawan.ts';
import { timeAndLocationDecoders } from './time-and-location.ts';

export type { DecoderFixture, ExpectedOutcome, FixtureDevice, LogLine } from './fixture.ts';

/** Every decoder fixture, in the order the runner feeds them to one shared sandbox. */
export const decoders: DecoderFixture[] = [...binaryFrameDecoders, ...jsonDecoders, ...timeAndLocationDecoders, ...controlFlowDecoders];
