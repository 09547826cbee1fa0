export { configFromValues } from "./config";
export { modelEngine, unknownOutputsEngine } from "./defaultEngine";
export { runProgram } from "./program";
export type {
  Diagnostic,
  DynamicCall,
  EngineHook,
  HarnessRegistration,
  HookAnswer,
  ProgramRun,
  ResourceState,
  RunOptions,
} from "./types";
export { SECRET, SIG, UNKNOWN } from "./wire";
