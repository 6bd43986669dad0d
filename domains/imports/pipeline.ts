// The import pipeline: what activities, commands and tests call (README, Imports). domains/imports/index.ts
// stays free for the domain's registration (defineDomain on the structure branch).
export { IMPORT_ERROR_STATUS, ImportError, isImportError, type ImportErrorCode } from './errors';
export { assertValidMapping, bindMapping, mappingProblems, type MappingProblem } from './mapping/compile';
export { finishImport, mergeImport, mergeImportChunk, type ImportEnd, type MergeOptions, type MergeProgress } from './merge';
export { listRejections, neutralizeFormula, rejectionsCsv, type RejectionRow } from './rejections';
export { revertImport, type RevertResult } from './revert';
export { detectSource, DEFAULT_MAX_UNCOMPRESSED_BYTES, sniffSource, type ByteSource, type ReadPosition } from './source';
export { stageImport, stageImportChunk, stagingTable, type StageCursor, type StageOptions, type StagePartial, type StageResult } from './staging';
export { IMPORT_TARGETS, importTarget, type ImportTarget, type PermissionCheck, type TargetField } from './targets';
export * from './types';
