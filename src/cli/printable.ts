/**
 * Text from the service or a file (a channel_closed reason, an API message, a YAML key) reaches the terminal:
 * control characters (escape sequences, BEL, line breaks that would forge lines) are shown as \xNN.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
