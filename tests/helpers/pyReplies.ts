/**
 * The JSON replies of tests/interop/client.py's ops (see its docstring), typed once for every
 * interop test.
 */

export interface SendReply {
  id: string;
  state: string | null;
  result: unknown;
  exc_type: string | null;
  exc_message: string | null;
}

export interface GetReply {
  id: string;
  state: string;
  result: unknown;
  t_ready: number;
  exc_type: string | null;
  exc_module: string | null;
  exc_message: string | null;
  exc_args: unknown[] | null;
  exc_mro: string[] | null;
}

export interface ResultReply {
  id: string;
  state: string;
  ready: boolean;
  result: unknown;
  info: unknown;
  traceback: string | null;
}

export interface WatchReply {
  id: string;
  states: { state: string; info: unknown; t: number }[];
  state: string;
  result: unknown;
}
