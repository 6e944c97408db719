/**
 * tfjs's PROD flag silences its advisory console.warn calls ("Platform node has already been
 * set", "kernel ... is already registered", URL flag overrides) but never thrown errors. These run
 * a function with it set and restore the previous value afterwards, so warnings from the user's own
 * later calls still show. Never wrap tf.setBackend in them: tfjs reports a backend that fails to
 * initialise through the same warn(), and that is a real error.
 */
import * as tf from '@tensorflow/tfjs';

export function quietlySync<T>(f: () => T): T {
  const env = tf.env();
  const prev = env.getBool('PROD');
  env.set('PROD', true);
  try {
    return f();
  } finally {
    env.set('PROD', prev);
  }
}

/** quietlySync for a function that may return a promise: the flag stays set until it settles. */
export async function quietly<T>(f: () => Promise<T> | T): Promise<T> {
  const env = tf.env();
  const prev = env.getBool('PROD');
  env.set('PROD', true);
  try {
    return await f();
  } finally {
    env.set('PROD', prev);
  }
}
