import * as tf from '@tensorflow/tfjs';

/**
 * Runs f with tfjs's PROD flag set, which silences its advisory warnings ("kernel ... is already
 * registered", "platform node has already been set") but never thrown errors; restores the flag.
 */
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
