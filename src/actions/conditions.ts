/**
 * The conditions of `variable` triggers (SPEC §5): does a stored record meet `{variable, is, value,
 * second_value, value_type}`? Pure functions, no I/O; run on every stored message of an account that
 * has variable actions, so they allocate nothing per record.
 *
 * `value_type` decides the comparison: `number` (the default) reads both sides as numbers, and a
 * record value that is not a finite number never meets the condition (so `"abc" != 5` is not met:
 * a condition on numbers says nothing about text); `string` compares the texts (`<`, `>` in code-unit
 * order). `between` is inclusive at both ends. `any`: any record of the variable.
 */
import type { DataRecord } from '../data/record.ts';
import type { VariableCondition } from './model.ts';

/** Whether `record` meets `condition`. */
export function meets(condition: VariableCondition, record: DataRecord): boolean {
  if (record.variable !== condition.variable) return false;
  if (condition.is === 'any') return true;
  if (condition.value_type === 'string') {
    if (record.value === null || record.value === undefined) return false;
    return compare(String(record.value), String(condition.value), condition.is, condition.second_value === undefined ? '' : String(condition.second_value));
  }
  const value = toNumber(record.value);
  if (Number.isNaN(value)) return false;
  return compare(value, toNumber(condition.value), condition.is, toNumber(condition.second_value));
}

/** Whether some record meets some condition. */
export function anyMeets(conditions: readonly VariableCondition[], records: readonly DataRecord[]): boolean {
  for (let r = 0; r < records.length; r++) {
    for (let c = 0; c < conditions.length; c++) if (meets(conditions[c]!, records[r]!)) return true;
  }
  return false;
}

/** The records meeting some condition (the run's `records`). */
export function recordsMeeting(conditions: readonly VariableCondition[], records: readonly DataRecord[]): DataRecord[] {
  return records.filter((record) => conditions.some((condition) => meets(condition, record)));
}

function compare<T extends number | string>(value: T, operand: T, is: VariableCondition['is'], high: T): boolean {
  switch (is) {
    case '<':
      return value < operand;
    case '>':
      return value > operand;
    case '=':
      return value === operand;
    case '!=':
      return value !== operand;
    case 'between':
      return value >= operand && value <= high;
    default:
      return true;
  }
}

/** A finite number, or NaN: booleans and empty text are not numbers here. */
function toNumber(value: unknown): number {
  if (typeof value === 'number') return Number.isFinite(value) ? value : NaN;
  if (typeof value !== 'string' || value.trim() === '') return NaN;
  const number = Number(value);
  return Number.isFinite(number) ? number : NaN;
}
