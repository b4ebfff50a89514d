// Loads the native addon with an error that says what to do when it is missing.
import { native, type NativeBinding } from './native.js';

/**
 * The addon's binding.
 * @throws Error naming the cause (first line of node-gyp-build's message) and the build command.
 */
export function loadBinding(): NativeBinding {
  try {
    return native();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const firstLine = message.split('\n', 1)[0].trim();
    throw new Error(`Cannot load the omniseg native addon (${firstLine}); build it with "npm run build:native"`);
  }
}
