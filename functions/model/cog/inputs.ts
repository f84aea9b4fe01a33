/**
 * A predictor's inputs, declared once as a table: the table is both the `Input` schema of the OpenAPI
 * document and the validation a prediction's input goes through, so adding an input is one entry. It
 * follows Cog's `Input(...)`: the title comes from the name, `x-order` from the position in the table, an
 * input is optional unless marked `required`, and validation answers as Cog's pydantic does (the `type`s
 * and messages of its 422 `detail`).
 */

interface Declared {
  /** Cog derives it from the name (`negative_prompt` is "Negative Prompt"); set it only to differ. */
  readonly title?: string;
  readonly description?: string;
  /** Absent, null or missing from the request is then a 422. Not written in the property itself. */
  readonly required?: boolean;
}

export interface StringInput extends Declared {
  readonly type: 'string';
  /** `uri` is Cog's `Path` input: a file the model downloads, sent as a data URL or an http(s) URL. */
  readonly format?: 'uri';
  readonly default?: string;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly enum?: readonly string[];
}

export interface NumberInput extends Declared {
  /** `integer` refuses fractions; `number` takes any finite number. */
  readonly type: 'integer' | 'number';
  readonly default?: number;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly multipleOf?: number;
  readonly enum?: readonly number[];
}

export interface BooleanInput extends Declared {
  readonly type: 'boolean';
  readonly default?: boolean;
}

/** A list input; Cog's `list[Path]` is an array of `uri` strings, a file per item. */
export interface ArrayInput extends Declared {
  readonly type: 'array';
  readonly items: { readonly type: 'string'; readonly format?: 'uri' };
  readonly minItems?: number;
  readonly maxItems?: number;
}

/** One input, in the words of the OpenAPI property it becomes (keys in the order they are written). */
export type InputDeclaration = StringInput | NumberInput | BooleanInput | ArrayInput;

/** A predictor's inputs by name, in the order Cog's `x-order` gives them. */
export type InputTable = Readonly<Record<string, InputDeclaration>>;

type ValueOf<D> = D extends { readonly enum: readonly (infer E)[] }
  ? E
  : D extends { readonly type: 'string' }
    ? string
    : D extends { readonly type: 'boolean' }
      ? boolean
      : D extends { readonly type: 'array' }
        ? string[]
        : number;

/** Always there after validation: required, or filled in from its default. */
type Present<D> = D extends { readonly required: true }
  ? true
  : D extends { readonly default: unknown }
    ? true
    : false;

/** The validated input a predictor receives for a table declared `as const`. */
export type InputOf<T extends InputTable> = {
  -readonly [K in keyof T as Present<T[K]> extends true ? K : never]: ValueOf<T[K]>;
} & {
  -readonly [K in keyof T as Present<T[K]> extends true ? never : K]?: ValueOf<T[K]>;
};

/** One entry of a Cog 422 `detail`. */
export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

/** The `Input` component of the OpenAPI document, as Cog writes it for these declarations. */
export function inputSchema(table: InputTable): Record<string, unknown> {
  const required = Object.keys(table).filter((name) => table[name]!.required);
  const properties = Object.fromEntries(
    Object.entries(table).map(([name, { required: _, type, ...declared }], order) => [
      name,
      // Keys in Cog's order: type and title first, x-order last; a declared title keeps its place.
      { type, title: titleOf(name), ...declared, 'x-order': order },
    ]),
  );
  return { type: 'object', title: 'Input', ...(required.length > 0 && { required }), properties };
}

/** `negative_prompt` -> "Negative Prompt", as pydantic titles a field. */
const titleOf = (name: string): string =>
  name
    .split('_')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join(' ');

/**
 * Checks a prediction's `input` against the table the way Cog does: declared types, bounds and choices,
 * unknown fields refused, defaults filled in. Issues are located under `body.input`, as in Cog's answer.
 */
export function validateInput<T extends InputTable>(
  table: T,
  input: unknown,
): { value: InputOf<T> } | { issues: ValidationIssue[] } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { issues: [{ loc: ['body', 'input'], msg: 'Input should be an object', type: 'dict_type' }] };
  }
  const raw = input as Record<string, unknown>;
  const issues: ValidationIssue[] = [];
  const values: Record<string, unknown> = {};
  for (const [name, declared] of Object.entries(table)) {
    if (declared.required && (raw[name] === undefined || raw[name] === null)) {
      issues.push({ loc: ['body', 'input', name], msg: 'Field required', type: 'missing' });
    }
  }
  for (const [name, value] of Object.entries(raw)) {
    const declared = table[name];
    const loc = ['body', 'input', name];
    if (!declared) {
      issues.push({ loc, msg: `Unexpected field '${name}'`, type: 'extra_forbidden' });
      continue;
    }
    if (value === undefined || value === null) continue;
    const problem = problemOf(declared, value);
    if (problem) {
      const { item, ...issue } = problem;
      issues.push({ loc: item === undefined ? loc : [...loc, item], ...issue });
    } else values[name] = value;
  }
  for (const [name, declared] of Object.entries(table)) {
    if (values[name] === undefined && 'default' in declared && declared.default !== undefined) {
      values[name] = declared.default;
    }
  }
  if (issues.length > 0) return { issues };
  return { value: values as InputOf<T> };
}

/** What is wrong with a value; `item` is the index of the list item at fault, located under the input. */
type Problem = Omit<ValidationIssue, 'loc'> & { item?: number };

function problemOf(declared: InputDeclaration, value: unknown): Problem | undefined {
  switch (declared.type) {
    case 'string':
      return stringProblem(declared, value);
    case 'boolean':
      return typeof value === 'boolean'
        ? undefined
        : { msg: 'Input should be a valid boolean', type: 'bool_type' };
    case 'array':
      return arrayProblem(declared, value);
    default:
      return numberProblem(declared, value);
  }
}

function arrayProblem(declared: ArrayInput, value: unknown): Problem | undefined {
  if (!Array.isArray(value)) return { msg: 'Input should be a valid list', type: 'list_type' };
  const { minItems, maxItems } = declared;
  if (minItems !== undefined && value.length < minItems) {
    return {
      msg: `List should have at least ${items(minItems)} after validation, not ${value.length}`,
      type: 'too_short',
    };
  }
  if (maxItems !== undefined && value.length > maxItems) {
    return {
      msg: `List should have at most ${items(maxItems)} after validation, not ${value.length}`,
      type: 'too_long',
    };
  }
  for (const [item, element] of value.entries()) {
    const problem = stringProblem(declared.items, element);
    if (problem) return { ...problem, item };
  }
  return undefined;
}

const items = (n: number) => `${n} item${n === 1 ? '' : 's'}`;

/** The schemes of a Cog `Path` input: the model fetches http(s) URLs and decodes data URLs. */
const URI_SCHEMES = ['data:', 'http:', 'https:'];

function stringProblem(
  declared: Pick<StringInput, 'format' | 'minLength' | 'maxLength' | 'enum'>,
  value: unknown,
): Problem | undefined {
  if (typeof value !== 'string') return { msg: 'Input should be a valid string', type: 'string_type' };
  if (declared.format === 'uri') {
    const problem = uriProblem(value);
    if (problem) return problem;
  }
  const { minLength, maxLength } = declared;
  if (minLength !== undefined && value.length < minLength) {
    return { msg: `String should have at least ${characters(minLength)}`, type: 'string_too_short' };
  }
  if (maxLength !== undefined && value.length > maxLength) {
    return { msg: `String should have at most ${characters(maxLength)}`, type: 'string_too_long' };
  }
  return choiceProblem(declared.enum, value);
}

function uriProblem(value: string): Problem | undefined {
  // A data URL can be megabytes: its scheme is enough here, its payload is read when the file is.
  if (/^data:/i.test(value)) return undefined;
  if (!URL.canParse(value)) {
    return { msg: 'Input should be a valid URL, relative URL without a base', type: 'url_parsing' };
  }
  if (!URI_SCHEMES.includes(new URL(value).protocol)) {
    return { msg: "URL scheme should be 'data', 'http' or 'https'", type: 'url_scheme' };
  }
  return undefined;
}

const characters = (n: number) => `${n} character${n === 1 ? '' : 's'}`;

function numberProblem(declared: NumberInput, value: unknown): Problem | undefined {
  if (declared.type === 'integer' && (typeof value !== 'number' || !Number.isInteger(value))) {
    return { msg: 'Input should be a valid integer', type: 'int_type' };
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return { msg: 'Input should be a valid number', type: 'float_type' };
  }
  const { minimum, maximum, multipleOf } = declared;
  if (minimum !== undefined && value < minimum) {
    return { msg: `Input should be greater than or equal to ${minimum}`, type: 'greater_than_equal' };
  }
  if (maximum !== undefined && value > maximum) {
    return { msg: `Input should be less than or equal to ${maximum}`, type: 'less_than_equal' };
  }
  if (multipleOf !== undefined && value % multipleOf !== 0) {
    return { msg: `Input should be a multiple of ${multipleOf}`, type: 'multiple_of' };
  }
  return choiceProblem(declared.enum, value);
}

/** Cog turns `choices` into an enumeration; pydantic names them all when a value is not one of them. */
function choiceProblem<V extends string | number>(
  choices: readonly V[] | undefined,
  value: V,
): Problem | undefined {
  if (!choices || choices.includes(value)) return undefined;
  const shown = choices.map((c) => (typeof c === 'string' ? `'${c}'` : String(c)));
  const list = shown.length > 1 ? `${shown.slice(0, -1).join(', ')} or ${shown.at(-1)}` : (shown[0] ?? '');
  return { msg: `Input should be ${list}`, type: 'enum' };
}
