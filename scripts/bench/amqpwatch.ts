/**
 * Erlang expressions the AMQP bench evaluates on its RabbitMQ node (`rabbitmqctl eval`): the
 * in-broker drain watcher, and the wait for an idle worker's consumer. See amqp.ts.
 */

export type AmqpMode = 'ignored' | 'rpc';

/** A vhost name that is also a plain Erlang binary literal. */
export const vhostName = (mode: AmqpMode, id: string, i: number | string): string => `bench-${mode}-${id}-${i}`;

export const bin = (s: string): string => {
  if (!/^[A-Za-z0-9._-]+$/.test(s)) throw new Error(`not a plain name: ${JSON.stringify(s)}`);
  return `<<"${s}">>`;
};

/**
 * How the watcher knows every result arrived:
 *   { queue }  the rpc:// reply queue holds N messages (Celery and Celeriac);
 *   'routed'   the node has routed N more messages than when the watcher started. celery-node
 *              publishes each result to a queue of its own, one per task; its results are the
 *              only messages published during its drain (the producer ran before), and reading
 *              one node-wide counter is cheap, where summing 20,000 queues every poll is not;
 *   null       results are ignored.
 */
export type ResultsWatch = { queue: string } | 'routed' | null;

/**
 * The in-broker watcher: spawns a process on the node that polls the queue process's counters
 * every ~2 ms (`receive after 1`) and reports over UDP. rabbit_amqqueue:info/2 is what
 * `rabbitmqctl list_queues` reads: a call into the queue process, answered after everything
 * already in its mailbox (deliveries, acks). It gives up at the deadline or when the vhost is gone.
 */
export function watcherExpr(a: { token: string; vhost: string; results: ResultsWatch; n: number; port: number; timeoutMs: number }): string {
  const r = a.results === null ? 'none' : a.results === 'routed' ? 'routed' : bin(a.results.queue);
  return `
Token = ${bin(a.token)}, VH = ${bin(a.vhost)}, Q = <<"celery">>, R = ${r},
N = ${a.n}, Port = ${a.port}, Deadline = erlang:monotonic_time(millisecond) + ${a.timeoutMs},
Routed = fun() -> maps:get(messages_routed_total, maps:get([{protocol, amqp091}], rabbit_global_counters:overview())) end,
RoutedBase = Routed(),
spawn(fun() ->
  {ok, Sock} = gen_udp:open(0, [binary, {ip, {127,0,0,1}}]),
  Send = fun(Fmt, Args) -> gen_udp:send(Sock, {127,0,0,1}, Port, iolist_to_binary([Token, " ", io_lib:format(Fmt, Args)])) end,
  Count = fun(Name) ->
    case rabbit_amqqueue:lookup(rabbit_misc:r(VH, queue, Name)) of
      {ok, Qr} -> Info = rabbit_amqqueue:info(Qr, [messages_ready, messages]),
                  {proplists:get_value(messages_ready, Info), proplists:get_value(messages, Info)};
      _ -> gone
    end
  end,
  AllResults = fun() ->
    case R of
      routed -> Routed() - RoutedBase >= N;
      _ -> case Count(R) of {_, Rm} -> Rm >= N; gone -> false end
    end
  end,
  Loop = fun Loop(Started, Acked, Replied) ->
    case Count(Q) of
      gone -> Send("gone", []);
      {Ready, Msgs} ->
        S1 = Started orelse Ready < N,
        case S1 andalso not Started of true -> Send("start ~b ~b", [Ready, Msgs]); false -> ok end,
        A1 = Acked orelse (S1 andalso Msgs =:= 0),
        case A1 andalso not Acked of true -> Send("acked", []); false -> ok end,
        R1 = Replied orelse AllResults(),
        case R1 andalso not Replied of true -> Send("replies", []); false -> ok end,
        case A1 andalso R1 of
          true -> Send("done", []);
          false ->
            case erlang:monotonic_time(millisecond) > Deadline of
              true -> Send("deadline ~b ~b", [Ready, Msgs]);
              false -> receive after 1 -> ok end, Loop(S1, A1, R1)
            end
        end
    end
  end,
  Loop(false, false, R =:= none)
end), ok.`;
}

/**
 * Returns (prints) `consuming` once the vhost's `celery` queue has a consumer, or `timeout`.
 * The queue does not exist until the worker declares it. One eval, looping on the node: a
 * rabbitmqctl call per poll would cost ~0.3 s of CPU each.
 */
export function consumerWaitExpr(vhost: string, timeoutMs: number): string {
  return `
VH = ${bin(vhost)},
Consumers = fun() ->
  case rabbit_amqqueue:lookup(rabbit_misc:r(VH, queue, <<"celery">>)) of
    {ok, Q} -> proplists:get_value(consumers, rabbit_amqqueue:info(Q, [consumers]));
    _ -> 0
  end
end,
Wait = fun W(Left) ->
  case Consumers() > 0 of
    true -> consuming;
    false when Left > 0 -> timer:sleep(50), W(Left - 50);
    false -> timeout
  end
end,
Wait(${timeoutMs}).`;
}
