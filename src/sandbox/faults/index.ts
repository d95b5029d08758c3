export { CONTROL_TERMINATE_REASON, createControlHandler, type ControlHandlerOptions } from './control-handler.js';
export { defaultFaultSettings, FaultState, type FaultSettings, type FaultSettingsPatch, type FaultStateEvents, type ResumeFailureKind } from './fault-state.js';
export { mulberry32 } from './mulberry32.js';
