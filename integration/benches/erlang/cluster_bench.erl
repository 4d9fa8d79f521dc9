%% Erlang/OTP baseline of Snow's cluster benchmark (integration/benches/cluster.rs): `global' and
%% `pg' in a cluster of five nodes on loopback, started by the Rust harness as child processes with
%% a private cookie and a private epmd (ERL_EPMD_PORT), over TLS distribution.
%%
%%   agent nodes: erl -name nK@127.0.0.1 ... -s cluster_bench agent
%%       start pg's default scope, register `cluster_agent' (see agent_loop/0), print READY.
%%   lead node:   erl -name n1@127.0.0.1 ... -s cluster_bench lead Rounds Lookups Broadcasts Calls N2 N3 N4 N5
%%       connects to the agents, waits for the full mesh, runs the workloads and prints one
%%       `RESULT key value' line per figure, then halts (exit 0; exit 1 with an `ERROR' line).
%%       Each timed workload sits between `PHASE Name' and `PHASE_END Name Count' lines, after
%%       each of which the lead waits for `GO' on stdin (integration/src/meter.rs).
%%
%% Visibility on the other nodes: after `register_name' (or `pg:join') returns, the lead sends
%% each agent a check request; the agent confirms that its own node sees the name (or member),
%% waiting if it does not yet, and answers with os:system_time(nanosecond) at the moment it saw
%% it. The lead takes the latest of the four against its own clock reading before the call (one
%% machine, one clock). The figure is an upper bound: the check request's own trip is in it.
-module(cluster_bench).
-export([agent/0, lead/1, bench_call_target/1]).

-define(BLOB, 64).

%% ---- every node ----------------------------------------------------------------------------

agent() ->
    start_agent(),
    io:format("READY~n"),
    ok.

%% pg's default scope and the `cluster_agent' process (the lead runs one too: it holds a third of
%% the broadcast's members).
start_agent() ->
    {ok, _} = pg:start(pg),
    register(cluster_agent, spawn(fun() -> agent_loop() end)).

%% Commands of the lead:
%%   {nodes, From}                         -> {nodes, node(), Count}
%%   {check_name, Name, From}              -> {seen, Name, Ns} once global:whereis_name(Name) answers
%%   {check_member, Group, Pid, From}      -> {seen, Group, Ns} once Pid is among pg's members
%%   {members, Group, Count, M, From}      -> starts Count members of Group, each expecting M
%%                                            broadcasts; {joined, node(), Count} once they all
%%                                            joined, {node_done, node()} once they all got M
agent_loop() ->
    receive
        {nodes, From} ->
            From ! {nodes, node(), length(nodes())};
        {check_name, Name, From} ->
            From ! {seen, Name, await(fun() -> global:whereis_name(Name) =/= undefined end)};
        {check_member, Group, Pid, From} ->
            From ! {seen, Group, await(fun() -> lists:member(Pid, pg:get_members(Group)) end)};
        {members, Group, Count, M, From} ->
            spawn(fun() -> members(Group, Count, M, From) end)
    end,
    agent_loop().

%% The time (os:system_time, ns) at which Pred first held: yields for up to 2 ms (the name or
%% member is usually there already, or one scheduling away), then polls every millisecond; 5 s
%% deadline.
await(Pred) ->
    await(Pred, erlang:monotonic_time(microsecond)).

await(Pred, Since) ->
    case Pred() of
        true -> os:system_time(nanosecond);
        false ->
            Waited = erlang:monotonic_time(microsecond) - Since,
            if
                Waited > 5000000 -> error(not_visible_within_5s);
                Waited > 2000 -> timer:sleep(1);
                true -> erlang:yield()
            end,
            await(Pred, Since)
    end.

members(Group, Count, M, From) ->
    Counter = self(),
    Pids = [spawn(fun() -> member(M, Counter) end) || _ <- lists:seq(1, Count)],
    ok = pg:join(Group, Pids),
    From ! {joined, node(), Count},
    count_done(Count),
    From ! {node_done, node()}.

member(0, Counter) -> Counter ! member_done;
member(M, Counter) ->
    receive
        {chat, _Seq, _Bin} -> member(M - 1, Counter)
    after 60000 -> error(broadcast_timeout)
    end.

count_done(0) -> ok;
count_done(N) ->
    receive member_done -> count_done(N - 1)
    after 60000 -> error(members_timeout)
    end.

%% The function erpc:call runs on an agent: answers its argument.
bench_call_target(X) -> X.

%% ---- the lead node -------------------------------------------------------------------------

lead(Args) ->
    try
        [Rounds, Lookups, Broadcasts, Calls | Agents] = Args,
        run(list_to_integer(atom_to_list(Rounds)), list_to_integer(atom_to_list(Lookups)),
            list_to_integer(atom_to_list(Broadcasts)), list_to_integer(atom_to_list(Calls)), Agents),
        halt(0)
    catch
        Class:Reason:Stack ->
            io:format("ERROR ~p:~p ~p~n", [Class, Reason, Stack]),
            halt(1)
    end.

run(Rounds, Lookups, Broadcasts, Calls, Agents) ->
    start_agent(),
    T0 = erlang:monotonic_time(nanosecond),
    [true = net_kernel:connect_node(A) || A <- Agents],
    await_mesh(Agents, length(Agents), erlang:monotonic_time(millisecond) + 30000),
    result(mesh_ns, erlang:monotonic_time(nanosecond) - T0),
    registry(Rounds, Agents),
    whereis_cost(Lookups),
    joins(Rounds, Agents),
    broadcast(Broadcasts, lists:sublist(Agents, 2)),
    [calls(hd(Agents), Calls) || Calls > 0].

result(Key, Value) ->
    io:format("RESULT ~s ~p~n", [Key, Value]).

phase(Name) -> gate(io_lib:format("PHASE ~s", [Name])).
phase_end(Name, Count) -> gate(io_lib:format("PHASE_END ~s ~b", [Name, Count])).
gate(Line) ->
    io:format("~s~n", [Line]),
    case io:get_line("") of
        "GO\n" -> ok;
        Other -> error({expected_go, lists:flatten(Line), Other})
    end.

%% Until every agent is connected to every other node.
await_mesh(Agents, Others, Deadline) ->
    [{cluster_agent, A} ! {nodes, self()} || A <- Agents],
    Counts = [receive {nodes, A, N} -> N after 5000 -> error({no_answer, A}) end || A <- Agents],
    case lists:all(fun(N) -> N >= Others end, Counts) of
        true -> ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> error({no_full_mesh, Counts});
                false -> timer:sleep(10), await_mesh(Agents, Others, Deadline)
            end
    end.

%% Rounds registrations of a fresh process under a fresh name: how long register_name takes to
%% return, and how long until every agent's node sees the name.
registry(Rounds, Agents) ->
    _ = [register_round({warm, I}, Agents) || I <- lists:seq(1, max(1, Rounds div 10))],
    phase(register),
    Samples = [register_round({svc, I}, Agents) || I <- lists:seq(1, Rounds)],
    phase_end(register, Rounds),
    summary(reg_return, [R || {R, _} <- Samples]),
    summary(reg_visible, [V || {_, V} <- Samples]).

register_round(Name, Agents) ->
    Holder = spawn(fun() -> receive stop -> ok end end),
    Start = os:system_time(nanosecond),
    T0 = erlang:monotonic_time(nanosecond),
    yes = global:register_name(Name, Holder),
    Returned = erlang:monotonic_time(nanosecond) - T0,
    [{cluster_agent, A} ! {check_name, Name, self()} || A <- Agents],
    Seen = [receive {seen, Name, Ns} -> Ns after 10000 -> error({not_seen, Name, A}) end || A <- Agents],
    global:unregister_name(Name),
    Holder ! stop,
    {Returned, lists:max(Seen) - Start}.

%% The cost of global:whereis_name of a registered name on the node that registered it.
whereis_cost(Lookups) ->
    Holder = spawn(fun() -> receive stop -> ok end end),
    yes = global:register_name(lookup_target, Holder),
    T0 = erlang:monotonic_time(nanosecond),
    lookup_loop(Lookups, Holder),
    T1 = erlang:monotonic_time(nanosecond),
    result(whereis_n, Lookups),
    result(whereis_ns, T1 - T0),
    global:unregister_name(lookup_target),
    Holder ! stop.

lookup_loop(0, _) -> ok;
lookup_loop(N, Holder) ->
    Holder = global:whereis_name(lookup_target),
    lookup_loop(N - 1, Holder).

%% Rounds joins of a fresh process to a fresh group: how long pg:join takes to return, and how
%% long until every agent's node lists the member.
joins(Rounds, Agents) ->
    _ = [join_round({warm_room, I}, Agents) || I <- lists:seq(1, max(1, Rounds div 10))],
    phase(join),
    Samples = [join_round({room, I}, Agents) || I <- lists:seq(1, Rounds)],
    phase_end(join, Rounds),
    summary(join_return, [R || {R, _} <- Samples]),
    summary(join_visible, [V || {_, V} <- Samples]).

join_round(Group, Agents) ->
    Member = spawn(fun() -> receive stop -> ok end end),
    Start = os:system_time(nanosecond),
    T0 = erlang:monotonic_time(nanosecond),
    ok = pg:join(Group, Member),
    Returned = erlang:monotonic_time(nanosecond) - T0,
    [{cluster_agent, A} ! {check_member, Group, Member, self()} || A <- Agents],
    Seen = [receive {seen, Group, Ns} -> Ns after 10000 -> error({not_seen, Group, A}) end || A <- Agents],
    Member ! stop,
    {Returned, lists:max(Seen) - Start}.

%% 1,000 members of one group on three nodes (this one and two agents); Broadcasts messages to all
%% of them from here, each `[P ! Msg || P <- pg:get_members(G)]'; timed until every member has
%% every message. A warm-up round of a tenth first, with other members.
broadcast(Broadcasts, TwoAgents) ->
    _ = broadcast_round(chat_warm, max(1, Broadcasts div 10), TwoAgents),
    phase(broadcast),
    Elapsed = broadcast_round(chat, Broadcasts, TwoAgents),
    phase_end(broadcast, Broadcasts * 1000),
    result(bcast_deliveries, Broadcasts * 1000),
    result(bcast_ns, Elapsed).

broadcast_round(Group, M, TwoAgents) ->
    Nodes = [node() | TwoAgents],
    Counts = [334, 333, 333],
    [{cluster_agent, N} ! {members, Group, C, M, self()} || {N, C} <- lists:zip(Nodes, Counts)],
    [receive {joined, N, _} -> ok after 30000 -> error({no_members, N}) end || N <- Nodes],
    await_members(Group, 1000, erlang:monotonic_time(millisecond) + 30000),
    Blob = binary:copy(<<7>>, ?BLOB),
    T0 = erlang:monotonic_time(nanosecond),
    send_broadcasts(Group, Blob, 1, M),
    [receive {node_done, N} -> ok after 60000 -> error({broadcast_unfinished, N}) end || N <- Nodes],
    erlang:monotonic_time(nanosecond) - T0.

await_members(Group, Count, Deadline) ->
    case length(pg:get_members(Group)) >= Count of
        true -> ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> error({members_missing, Group});
                false -> timer:sleep(1), await_members(Group, Count, Deadline)
            end
    end.

send_broadcasts(_Group, _Blob, Seq, M) when Seq > M -> ok;
send_broadcasts(Group, Blob, Seq, M) ->
    Msg = {chat, Seq, Blob},
    _ = [P ! Msg || P <- pg:get_members(Group)],
    send_broadcasts(Group, Blob, Seq + 1, M).

%% erpc:call latency and calls/s with 16 concurrent callers to one agent (Snow's side: `call' in
%% cluster_bench.rs).
calls(Agent, Total) ->
    _ = call_samples(Agent, max(16, Total div 10)),
    phase(call),
    T0 = erlang:monotonic_time(nanosecond),
    Samples = call_samples(Agent, Total),
    T1 = erlang:monotonic_time(nanosecond),
    phase_end(call, length(Samples)),
    result(call_n, length(Samples)),
    result(call_ns, T1 - T0),
    summary(call, Samples).

call_samples(Agent, Total) ->
    Parent = self(),
    Per = max(1, Total div 16),
    Pids = [spawn_link(fun() -> Parent ! {called, self(), caller(Agent, Per, [])} end) || _ <- lists:seq(1, 16)],
    lists:append([receive {called, P, S} -> S after 120000 -> error(call_timeout) end || P <- Pids]).

caller(_Agent, 0, Acc) -> Acc;
caller(Agent, N, Acc) ->
    T0 = erlang:monotonic_time(nanosecond),
    N = erpc:call(Agent, cluster_bench, bench_call_target, [N], 10000),
    caller(Agent, N - 1, [erlang:monotonic_time(nanosecond) - T0 | Acc]).

summary(Key, Samples) ->
    Sorted = lists:sort(Samples),
    result(io_lib:format("~s_p50_ns", [Key]), percentile(Sorted, 50)),
    result(io_lib:format("~s_p99_ns", [Key]), percentile(Sorted, 99)).

percentile(Sorted, P) ->
    N = length(Sorted),
    lists:nth(max(1, min(N, (N * P + 99) div 100)), Sorted).
