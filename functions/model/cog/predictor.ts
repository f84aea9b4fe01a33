import type { InputOf, InputTable, ValidationIssue } from './inputs.ts';

/**
 * What a Cog server runs: the TypeScript side of Cog's `BasePredictor` (`setup` and `predict`) with its
 * declared inputs and output. The server (`server.ts`) owns the HTTP contract, so a predictor only says
 * what it takes, how it gets ready and how it predicts.
 */
export interface Predictor<T extends InputTable> {
  /** Short name: the root document's `model` and the health check's `model.name`. */
  readonly name: string;
  /** Said on the root, in the health check and in the OpenAPI document's `info.description`. */
  readonly description: string;
  readonly version: string;
  /** The declared inputs: the OpenAPI `Input` schema and the validation every prediction goes through. */
  readonly inputs: T;
  /**
   * The OpenAPI `Output` schema: `{type: string, format: uri}` for one file (Cog's `-> Path`), an array of
   * those for a list (`-> list[Path]`). `predict` returns the shape it declares.
   */
  readonly output: Readonly<Record<string, unknown>>;
  /**
   * Optional: problems between inputs that the table cannot express (a list whose length must follow
   * another input). They answer 422 like the table's own, before the prediction starts. Cog has no such
   * hook (a Cog model fails the prediction instead); a client must expect either.
   */
  check?(input: InputOf<T>): ValidationIssue[];
  /** Gets ready (loads weights, starts threads); resolves with a line for the health check's setup logs. */
  setup(context: SetupContext): Promise<string>;
  /** One prediction, at most `concurrency` at once. Throwing fails the prediction with the error's message. */
  predict(input: InputOf<T>, context: PredictContext): Promise<OutputFile | readonly OutputFile[]>;
  /** Releases what setup took, once no prediction is waited for any more. */
  close(): Promise<void>;
}

export interface SetupContext {
  /** Predictions the server runs at once. */
  readonly concurrency: number;
  /** Reports the predictor broken for good (a model process died): the server turns DEFUNCT. */
  defunct(reason: string): void;
}

export interface PredictContext {
  /** Aborted when the prediction is canceled or the server stops: stop waiting, the result is dropped. */
  readonly signal: AbortSignal;
  /** Adds a line to the prediction's logs. */
  log(line: string): void;
}

/**
 * A file output (Cog's `-> Path`): the server sends it as a data URL, or serves it at `/outputs/`. A list of
 * them (`-> list[Path]`) is sent as a list of those, in order.
 */
export interface OutputFile {
  readonly contentType: string;
  /** Without the dot; names the file in `/outputs/<id>.<extension>` (`/outputs/<id>/<index>.<extension>` in a list). */
  readonly extension: string;
  readonly bytes: Buffer;
}
