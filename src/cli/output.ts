/** Where commands write what they tell the operator (stdout by default; tests capture it). */
export type Print = (line: string) => void;

export const stdout: Print = (line) => console.log(line);
