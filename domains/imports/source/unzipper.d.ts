// The part of unzipper (0.10, exceljs' zip reader) that the workbook check uses.
declare module 'unzipper' {
  import { Duplex, PassThrough } from 'node:stream';
  export interface Entry extends PassThrough {
    path: string;
    type: 'File' | 'Directory';
    autodrain(): void;
  }
  export function Parse(opts?: { forceStream?: boolean }): Duplex;
  const unzipper: { Parse: typeof Parse };
  export default unzipper;
}
