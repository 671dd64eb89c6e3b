using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// A channel between tasklets, plain async code and OS threads: unbuffered (a rendezvous), buffered, or
/// unbounded. Thread-safe. See DESIGN.md, "Channels", "Close" and "Nothing is lost".
/// </summary>
/// <typeparam name="T">The item type.</typeparam>
/// <remarks>
/// <para><b>Invariants</b> (hold whenever <c>_gate</c> is free; Go's <c>hchan</c> invariants):</para>
/// <list type="bullet">
/// <item>At most one of <c>_senders</c> and <c>_receivers</c> holds live nodes (nodes whose wait can still be
/// claimed), except that one select may have a send and a receive case on the same channel.</item>
/// <item><c>_buffer.Count &gt; 0</c> implies no live receiver is queued; a live sender is queued only when the
/// buffer is full (capacity 0 counts as always full).</item>
/// <item>A queued node is either live, or its wait was claimed by someone else (kill, timeout, cancellation, a
/// partner on another channel of the same select); such a node never takes or gives an item, and its owner
/// withdraws it when it resumes.</item>
/// <item>A live readiness wait (System.Threading.Channels' <c>WaitToReadAsync</c>/<c>WaitToWriteAsync</c>, see
/// Channel.Readiness.cs) is queued only while its operation could not proceed: every transition that makes the channel
/// readable (an item buffered, a sender parked, an error queued, close) or writable (a receiver parked, a buffer slot
/// freed, close) claims every such wait of that kind under the gate.</item>
/// <item>Once closed, the buffer only shrinks; "closed and drained" (closed, nothing buffered, no error pending) is
/// final, and <see cref="Completion"/> completes at that transition.</item>
/// </list>
/// <para><b>Locking</b>: <c>_gate</c> is held only to pair a party with a node or a buffer slot. Partners are woken,
/// <see cref="Completion"/> is completed, and user code runs, after it is released (<see cref="ReleaseGate"/>).</para>
/// <para><b>Handoff</b>: a party that finds a live partner node claims the partner's wait (CAS), moves the item
/// directly between them, and wakes the partner after releasing the gate; an item never passes through the
/// buffer while a receiver waits (no barging).</para>
/// </remarks>
[DebuggerDisplay("{DebuggerDisplay,nq}")]
public sealed partial class Channel<T> : IAsyncEnumerable<T>, IWaitSource
{
    // From the one counter of all sources: a per-T counter would give a Channel<int> and a Channel<string> the same
    // id, and two selects over both could lock them in opposite orders.
    private readonly long _id = WaitSourceIds.Next();
    private SpinGate _gate; // see SpinGate for why not System.Threading.Lock
    private readonly int _capacity; // 0 unbuffered, -1 unbounded

    // All under _gate.
    private Deque<T> _buffer;
    private WaitQueue _senders;
    private WaitQueue _receivers;
    private Queue<Exception>? _errors;
    private int _errorCount; // _errors.Count, kept as a field for the lock-free readers (volatile reads)
    private bool _closed;

    // What few channels need: the close error, Completion, readiness waits. Allocated under _gate on first need (a
    // close with an error, a read of Completion, a readiness wait) and never cleared, so that the hot paths of a channel
    // nobody bridges test one reference. Its fields are under _gate too.
    private ColdState? _cold;

    // _cold, when a locked path left work for the release of the gate (readiness waits it claimed, Completion to
    // complete): ReleaseGate and IWaitSource.ExitGate do it once the gate is free. Under _gate. Invariant: null
    // whenever the gate is free.
    private ColdState? _afterRelease;

    // Set once, never cleared: a party outside a Run() scheduler's tasklets used the channel.
    private volatile bool _external;
    private bool _createdOutside; // made outside any tasklet (set by the constructors): see WaitSources.IsExternal
    private Parties _parties;     // the schedulers whose tasklets used it, one deadlock group: see Parties
    private volatile ChannelPreference _preference;

    /// <summary>Creates an unbuffered channel (capacity 0, a rendezvous) or a buffered one.</summary>
    /// <param name="capacity">0 for a rendezvous: a send completes when a receiver took the item. n &gt; 0 buffers n items.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is negative; use <see cref="CreateUnbounded"/> for a channel whose sends never block.</exception>
    public Channel(int capacity = 0)
    {
        if (capacity < 0)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(capacity), capacity, Strings.NegativeCapacity);
        }

        _capacity = capacity;
        _buffer = new Deque<T>(capacity == 0 ? 0 : Math.Min(capacity, 64));
        InitExternal();
    }

    private Channel(bool unbounded)
    {
        Debug.Assert(unbounded);
        _capacity = -1;
        _buffer = new Deque<T>(16);
        InitExternal();
    }

    /// <summary>Creates an unbounded channel: sends never block (goless's "async" channel).</summary>
    /// <param name="name">A name for diagnostics (<see cref="Name"/>: Dump, deadlock reports, exception messages); null for none.</param>
    /// <returns>The channel.</returns>
    public static Channel<T> CreateUnbounded(string? name = null) => new(unbounded: true) { Name = name };

    /// <summary>A name for diagnostics: <see cref="Scheduler.Dump"/>, deadlock reports, the debugger.</summary>
    public string? Name { get; init; }

    /// <summary>The buffer size: 0 for unbuffered, n for buffered, -1 for unbounded.</summary>
    public int Capacity => _capacity;

    /// <summary>The number of buffered items.</summary>
    public int Count
    {
        get
        {
            using (new GateScope(ref _gate))
            {
                return _buffer.Count;
            }
        }
    }

    /// <summary>Blocked senders minus blocked receivers (Stackless): &gt; 0 senders wait, &lt; 0 receivers wait.</summary>
    public int Balance
    {
        get
        {
            using (new GateScope(ref _gate))
            {
                return _senders.CountLive() - _receivers.CountLive();
            }
        }
    }

    /// <summary>Who runs first after a handoff wakes a blocked partner. Default <see cref="ChannelPreference.Neither"/>.</summary>
    public ChannelPreference Preference
    {
        get => _preference;
        set
        {
            if (value is not (ChannelPreference.Neither or ChannelPreference.Receiver or ChannelPreference.Sender))
            {
                ThrowHelper.ThrowArgumentOutOfRange(nameof(value), value, Strings.BadPreference);
            }

            _preference = value;
        }
    }

    /// <summary>True once <see cref="Close()"/> or <see cref="Close(Exception?)"/> was called (buffered items may still be received).</summary>
    public bool IsClosed
    {
        get
        {
            using (new GateScope(ref _gate))
            {
                return _closed;
            }
        }
    }

    /// <summary>
    /// A task that completes when the channel is closed and drained: closed, nothing buffered, no exception from
    /// <see cref="SendException"/> pending (System.Threading.Channels' <c>ChannelReader.Completion</c>). It fails with
    /// the error given to <see cref="Close(Exception?)"/>, or is cancelled if that error is an
    /// <see cref="OperationCanceledException"/>.
    /// </summary>
    /// <remarks>
    /// <para>Created on first read; the same task every time. Its continuations never run inline, neither under the
    /// channel's lock nor on the stack of the party that drained the channel (the task runs them asynchronously).
    /// The operation that takes the last item completes it as the operation returns; a <see cref="Select"/> that does,
    /// from the thread pool right after.</para>
    /// <para>Reading it is not a use of the channel (deadlock detection, like <see cref="IsClosed"/>), and awaiting it
    /// in a tasklet is a foreign await: a tasklet blocked on it alone is not reported as deadlocked.</para>
    /// </remarks>
    public Task Completion
    {
        get
        {
            // Lock-free once created: both references are written once, with volatile writes (release) after the
            // objects they point to were built, and read here with volatile reads (acquire). Null sends us to the gate.
            if (Volatile.Read(ref _cold) is { } published && Volatile.Read(ref published.Completion) is { } created)
            {
                return created.Task;
            }

            TaskCompletionSource completion;
            bool drained;
            using (new GateScope(ref _gate))
            {
                ColdState cold = ColdLocked();
                if (cold.Completion is { } raced)
                {
                    return raced.Task;
                }

                completion = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                Volatile.Write(ref cold.Completion, completion);
                drained = IsDrainedLocked();
            }

            // Outside the gate. A drain after the gate was released sees the task and completes it too: completing
            // twice is harmless (the Try forms), and the error was fixed by the close that came first.
            if (drained)
            {
                Complete(completion, CloseError);
            }

            return completion.Task;
        }
    }

    /// <summary>
    /// The error the channel was closed with (<see cref="Close(Exception?)"/>), or null. Written once, under the gate,
    /// before <c>_closed</c>; a reader that learned of the close (under the gate, or from a wake that followed it) reads
    /// it without the lock.
    /// </summary>
    internal Exception? CloseError => Volatile.Read(ref _cold)?.CloseError;

    long IWaitSource.Id => _id;

    void IWaitSource.EnterGate() => _gate.Enter();

    /// <summary>
    /// Releases the gate for a caller that may hold other gates (a select over several sources, a withdraw): the
    /// work a locked path left (readiness wakes, Completion) goes to the thread pool, so that no foreign code (a
    /// synchronization context's Post) runs while those gates are held.
    /// </summary>
    void IWaitSource.ExitGate()
    {
        ColdState? work = _afterRelease; // read under the gate: only a holder writes it
        if (work is null)
        {
            _gate.Exit();
            return;
        }

        ReleaseGateAndRun(work, later: true);
    }

    bool IWaitSource.IsExternal => WaitSources.IsExternal(_external, _createdOutside);

    /// <summary>The gate's sequence word, read without the virtual call (the cases' lock-free snapshot).</summary>
    internal int GateSequence => _gate.Sequence;

    private string DebuggerDisplay => $"{Describe()}, balance {Balance}{(IsClosed ? ", closed" : string.Empty)}";

    // ---------------------------------------------------------------- send

    /// <summary>Sends an item, waiting while the channel cannot take it.</summary>
    /// <param name="item">The item.</param>
    /// <param name="cancellationToken">Cancels the wait; a cancelled send delivered nothing.</param>
    /// <returns>Completes when the item was taken by a receiver (unbuffered) or buffered.</returns>
    /// <remarks>
    /// Unbuffered: completes when a receiver has the item. Buffered: waits only while the buffer is full.
    /// Unbounded: never waits. If the send throws (close, kill, timeout, cancellation), the item was not delivered.
    /// </remarks>
    /// <exception cref="ChannelClosedException">The channel is closed, or was closed while the send waited; its <see cref="Exception.InnerException"/> is the error given to <see cref="Close(Exception?)"/>, if any.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    /// <exception cref="TaskletExitException">The calling tasklet was killed.</exception>
    /// <exception cref="TaskletTimeoutException">The calling tasklet's timeout expired.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // the synchronous path inlines into the caller (docs/performance.md)
    public TaskletOp SendAsync(T item, CancellationToken cancellationToken = default)
        => SendCore(item, cancellationToken, out _);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private TaskletOp SendCore(T item, CancellationToken cancellationToken, out Waiter? parked)
    {
        parked = null;
        Tasklet? current = Tasklet.CurrentOrNull;
        if (current is not null)
        {
            current.ThrowIfInterrupted();
        }

        MarkExternalIfNeeded(current);
        if (cancellationToken.IsCancellationRequested)
        {
            return TaskletOp.FromCanceled(cancellationToken);
        }

        Waiter? partner;
        Waiter waiter;
        long generation;
        using (new GateHold(this))
        {
            if (TrySendLocked(item, out partner))
            {
                goto Sent;
            }

            // Park. Nothing from BeginWait to the end of the block can throw (RentNode's first allocation comes
            // before it), so the node is queued if and only if the wait was begun.
            waiter = Waiter.ForParty(current);
            SendOperation<T> node = waiter.RentNode<SendOperation<T>>();
            generation = waiter.BeginWait(WaitKind.Send);
            node.Bind(this);
            node.Item = item;
            EnqueueSenderLocked(node, waiter, generation, 0);
            waiter.AddRegistration(node);
        }

        parked = waiter;
        waiter.Commit(generation, current, Timeout.InfiniteTimeSpan, 0, cancellationToken);
        return new TaskletOp(waiter, (short)generation);

    Sent:
        if (partner is not null && Waiter.WakePartner(partner, current, _preference == ChannelPreference.Receiver))
        {
            return current!.YieldAsync();
        }

        return default;
    }

    /// <summary>Sends an item if that needs no wait: a receiver is blocked, or the buffer has room.</summary>
    /// <param name="item">The item.</param>
    /// <returns>True when the item was delivered or buffered; false when the send would block or the channel is closed.</returns>
    public bool TrySend(T item)
    {
        MarkExternalIfNeeded(Tasklet.CurrentOrNull);
        Waiter? partner;
        using (new GateHold(this))
        {
            if (_closed || !TrySendLocked(item, out partner))
            {
                return false;
            }
        }

        if (partner is not null)
        {
            Waiter.WakePartner(partner, Tasklet.CurrentOrNull, preferPartner: false); // a Try never switches
        }

        return true;
    }

    /// <summary>Sends an item, blocking the calling OS thread. For threads that are not tasklets.</summary>
    /// <param name="item">The item.</param>
    /// <exception cref="InvalidOperationException">Called inside a tasklet or on a scheduler's thread: use <see cref="SendAsync"/>.</exception>
    /// <exception cref="ChannelClosedException">The channel is closed, or was closed while the send waited.</exception>
    public void Send(T item)
    {
        EnsureMayBlock(nameof(Send), nameof(SendAsync));
        TaskletOp pending = SendCore(item, default, out Waiter? parked);
        if (parked is ExternalWaiter external)
        {
            external.Block();
        }

        pending.GetAwaiter().GetResult();
    }

    /// <summary>Makes the next receiver throw <paramref name="exception"/> (Stackless's <c>send_exception</c>); never blocks.</summary>
    /// <param name="exception">The exception the receiver gets.</param>
    /// <remarks>
    /// A blocked receiver gets it at once. Otherwise the next receive throws it, before any buffered item:
    /// it is a signal, not an item. Use it to tell a consumer that the producer failed.
    /// </remarks>
    /// <exception cref="ChannelClosedException">The channel is closed (its <see cref="Exception.InnerException"/> is the error the channel was closed with, if any).</exception>
    public void SendException(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        MarkExternalIfNeeded(Tasklet.CurrentOrNull);
        SelectCase? node;
        using (new GateHold(this))
        {
            if (_closed)
            {
                throw new ChannelClosedException(Strings.SendOnClosed(Describe()), CloseError);
            }

            node = _receivers.DequeueAndClaim();
            if (node is null)
            {
                (_errors ??= new Queue<Exception>()).Enqueue(exception);
                _errorCount = _errors.Count;
                if (_cold is not null)
                {
                    ReadableLocked(); // a pending exception is something to receive: the next receiver gets it
                }

                return;
            }

            node._waiter!.SetOutcome(node._caseIndex, exception);
        }

        Waiter.WakePartner(node._waiter!, Tasklet.CurrentOrNull, preferPartner: false);
    }

    // ---------------------------------------------------------------- receive

    /// <summary>Receives an item, waiting until one is available.</summary>
    /// <param name="cancellationToken">Cancels the wait; a cancelled receive took nothing.</param>
    /// <returns>The item.</returns>
    /// <exception cref="ChannelClosedException">The channel is closed and drained; its <see cref="Exception.InnerException"/> is the error given to <see cref="Close(Exception?)"/>, if any.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    /// <exception cref="TaskletExitException">The calling tasklet was killed.</exception>
    /// <exception cref="TaskletTimeoutException">The calling tasklet's timeout expired.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // the synchronous path inlines into the caller (docs/performance.md)
    public TaskletOp<T> ReceiveAsync(CancellationToken cancellationToken = default)
        => ReceiveCore(cancellationToken, out _);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private TaskletOp<T> ReceiveCore(CancellationToken cancellationToken, out Waiter? parked)
    {
        parked = null;
        Tasklet? current = Tasklet.CurrentOrNull;
        if (current is not null)
        {
            current.ThrowIfInterrupted();
        }

        MarkExternalIfNeeded(current);
        if (cancellationToken.IsCancellationRequested)
        {
            return TaskletOp<T>.FromCanceled(cancellationToken);
        }

        Waiter? partner;
        T value;
        bool closed;
        Exception? error;
        ReceiveOperation<T> node;
        using (new GateHold(this))
        {
            if (TryReceiveLocked(out value, out closed, out partner, out error))
            {
                goto Received;
            }

            // Park; as in SendCore, nothing from BeginWait to the end of the block can throw.
            Waiter waiter = Waiter.ForParty(current);
            node = waiter.RentNode<ReceiveOperation<T>>();
            long generation = waiter.BeginWait(WaitKind.Receive);
            node.Bind(this);
            EnqueueReceiverLocked(node, waiter, generation, 0);
            waiter.AddRegistration(node);
            parked = waiter;
        }

        parked.Commit(node._generation, current, Timeout.InfiniteTimeSpan, 0, cancellationToken);
        return node.AsOp();

    Received:
        if (error is not null)
        {
            return TaskletOp<T>.FromException(error);
        }

        if (closed)
        {
            return TaskletOp<T>.FromException(new ChannelClosedException(Strings.ReceiveOnClosed(Describe()), CloseError));
        }

        if (partner is not null && Waiter.WakePartner(partner, current, _preference == ChannelPreference.Sender))
        {
            // Switch to the sender: the value rides on this tasklet's own node, completed by the yield.
            ReceiveOperation<T> self = current!.Waiter.RentNode<ReceiveOperation<T>>();
            self.Bind(this);
            current.YieldCore(WaitKind.Yield);
            self._waiter = current.Waiter;
            self.Value = value;
            return self.AsOp();
        }

        return new TaskletOp<T>(value);
    }

    /// <summary>Receives an item if one is available now (buffered, or from a blocked sender).</summary>
    /// <param name="item">The item, when the method returns true.</param>
    /// <returns>True when an item was received; false when none is available or the channel is closed and drained (with or without an error: see <see cref="Completion"/>).</returns>
    /// <exception cref="Exception">An exception sent with <see cref="SendException"/> is thrown to this receiver.</exception>
    public bool TryReceive([MaybeNullWhen(false)] out T item)
    {
        MarkExternalIfNeeded(Tasklet.CurrentOrNull);
        Waiter? partner;
        bool closed;
        Exception? error;
        using (new GateHold(this))
        {
            if (!TryReceiveLocked(out item, out closed, out partner, out error))
            {
                return false;
            }
        }

        if (error is not null)
        {
            throw error;
        }

        if (partner is not null)
        {
            Waiter.WakePartner(partner, Tasklet.CurrentOrNull, preferPartner: false); // a Try never switches
        }

        return !closed;
    }

    /// <summary>Receives an item, blocking the calling OS thread. For threads that are not tasklets.</summary>
    /// <returns>The item.</returns>
    /// <exception cref="InvalidOperationException">Called inside a tasklet or on a scheduler's thread: use <see cref="ReceiveAsync"/>.</exception>
    /// <exception cref="ChannelClosedException">The channel is closed and drained.</exception>
    public T Receive()
    {
        EnsureMayBlock(nameof(Receive), nameof(ReceiveAsync));
        TaskletOp<T> pending = ReceiveCore(default, out Waiter? parked);
        if (parked is ExternalWaiter external)
        {
            external.Block();
        }

        return pending.GetAwaiter().GetResult();
    }

    /// <summary>Enumerates the items as they arrive; the enumeration ends when the channel is closed and drained.</summary>
    /// <param name="cancellationToken">Cancels the wait for the next item.</param>
    /// <returns>An enumerator for <c>await foreach</c>.</returns>
    /// <remarks>
    /// A channel closed with an error (<see cref="Close(Exception?)"/>) does not end the loop quietly: once drained,
    /// the next step throws <see cref="ChannelClosedException"/> with that error as its inner exception.
    /// </remarks>
    public IAsyncEnumerator<T> GetAsyncEnumerator(CancellationToken cancellationToken = default)
        => new ChannelEnumerator<T>(this, cancellationToken);

    /// <summary>The receive for <c>await foreach</c>: returns null when done now (item or closed), else the parked node.</summary>
    internal ReceiveCase<T>? ReceiveForEnumerator(CancellationToken cancellationToken, out T value, out bool closed)
    {
        Tasklet? current = Tasklet.CurrentOrNull;
        current?.ThrowIfInterrupted();
        MarkExternalIfNeeded(current);
        cancellationToken.ThrowIfCancellationRequested();
        Waiter? partner;
        Exception? error;
        ReceiveCase<T> node;
        Waiter waiter;
        using (new GateHold(this))
        {
            if (TryReceiveLocked(out value, out closed, out partner, out error))
            {
                goto Received;
            }

            waiter = Waiter.ForParty(current);
            node = waiter.RentNode<EnumeratorReceive<T>>();
            long generation = waiter.BeginWait(WaitKind.Receive);
            node.Bind(this);
            EnqueueReceiverLocked(node, waiter, generation, 0);
            waiter.AddRegistration(node);
        }

        waiter.Commit(node._generation, current, Timeout.InfiniteTimeSpan, 0, cancellationToken);
        return node;

    Received:
        if (error is not null)
        {
            throw error;
        }

        if (closed && CloseError is { } closeError)
        {
            // Closed with an error: the loop must not end as if the producer had finished (no exception is lost).
            throw new ChannelClosedException(Strings.ReceiveOnClosed(Describe()), closeError);
        }

        if (partner is not null)
        {
            Waiter.WakePartner(partner, current, preferPartner: false);
        }

        return null;
    }

    // ---------------------------------------------------------------- select cases

    /// <summary>Creates a reusable receive case for <see cref="Select"/>.</summary>
    /// <returns>The case; after it fires, <see cref="ReceiveCase{T}.Value"/> holds the item.</returns>
    public ReceiveCase<T> ReceiveCase() => new(this);

    /// <summary>Creates a reusable send case for <see cref="Select"/>.</summary>
    /// <param name="item">The item to send; change it later through <see cref="SendCase{T}.Item"/>.</param>
    /// <returns>The case.</returns>
    public SendCase<T> SendCase(T item) => new(this, item);

    // ---------------------------------------------------------------- close

    /// <summary>Closes the channel. Idempotent.</summary>
    /// <remarks>
    /// Blocked senders wake with <see cref="ChannelClosedException"/> (their items were not delivered); later sends
    /// throw it. Receivers first drain the buffer, then get <see cref="ChannelClosedException"/>;
    /// <see cref="TryReceive"/> returns false, <c>await foreach</c> ends, a select's receive case fires with
    /// <see cref="ReceiveCase{T}.IsClosed"/>. <see cref="Completion"/> completes once the buffer is drained.
    /// </remarks>
    public void Close() => TryClose(null);

    /// <summary>
    /// Closes the channel because of <paramref name="error"/> (a producer that failed), or normally if it is null.
    /// Idempotent: a channel already closed keeps its first close, error or not.
    /// </summary>
    /// <param name="error">Why no more items will come, or null for a normal close (<see cref="Close()"/>).</param>
    /// <remarks>
    /// <para>As <see cref="Close()"/>, and the error reaches every party: blocked and later senders get
    /// <see cref="ChannelClosedException"/> with the error as <see cref="Exception.InnerException"/>; receivers drain
    /// the buffer, then get that exception too; <c>await foreach</c> throws it instead of ending; a select's receive
    /// case fires with <see cref="ReceiveCase{T}.IsClosed"/> and <see cref="ReceiveCase{T}.CloseError"/>;
    /// <see cref="TryReceive"/> returns false (the Try pattern does not throw); <see cref="Completion"/> fails with the
    /// error (is cancelled, for an <see cref="OperationCanceledException"/>).</para>
    /// <para>Receivers get a new <see cref="ChannelClosedException"/> each, never the error object itself, so that
    /// many receivers on many threads never throw one exception instance at once.</para>
    /// </remarks>
    public void Close(Exception? error) => TryClose(error);

    /// <summary>
    /// The close: returns true if this call closed the channel, false if it was closed already (the first close and
    /// its error stay). Internal: the public form is the idempotent <see cref="Close(Exception?)"/>; the STC writer's
    /// <c>TryComplete</c> needs the answer, atomically.
    /// </summary>
    internal bool TryClose(Exception? error) => TryClose(error, owner: null);

    /// <summary>
    /// <see cref="TryClose(Exception?)"/> by <paramref name="owner"/>: a channel reserved for one closer
    /// (<see cref="ReserveClose"/>) refuses every other.
    /// </summary>
    /// <exception cref="InvalidOperationException">The channel is reserved for another closer.</exception>
    internal bool TryClose(Exception? error, object? owner)
    {
        MarkExternalIfNeeded(Tasklet.CurrentOrNull);
        var wakeList = default(WakeList);
        TaskCompletionSource? completion = null;
        using (new GateScope(ref _gate))
        {
            AssertInvariants();
            if (_cold?.CloseOwner is { } reserved && !ReferenceEquals(reserved, owner))
            {
                ThrowHelper.ThrowInvalidOperation(Strings.CloseReserved(Describe()));
            }

            if (_closed)
            {
                return false;
            }

            // The error before the flag: whoever sees the channel closed (here or after a wake) sees its error.
            if (error is not null)
            {
                ColdLocked().CloseError = error;
            }

            _closed = true;
            SelectCase? node;
            while ((node = _senders.DequeueAndClaim()) is not null)
            {
                DropItem(node); // not delivered: the sender learns it from the exception
                Exception closed = node is WriterSend<T>
                    ? StcCompletion.OperationError(error) // an STC writer's WriteAsync: its own exception type
                    : new ChannelClosedException(Strings.SendOnClosed(Describe()), error);
                node._waiter!.SetOutcome(node._caseIndex, closed);
                wakeList.Add(node);
            }

            // Receivers are queued only while the buffer is empty, so each of them now sees "closed and drained".
            while ((node = _receivers.DequeueAndClaim()) is not null)
            {
                var receiver = Unsafe.As<ReceiveCase<T>>(node); // _receivers holds only this channel's receive nodes
                receiver.Value = default!;
                receiver.IsClosed = true;
                node._waiter!.SetOutcome(node._caseIndex, ClosedOutcome(receiver, error));
                wakeList.Add(node);
            }

            // Readiness waits are queued only while their operation could not proceed: now neither can, for good. The
            // answer is "never again", with the error as what the wait throws (STC's WaitToReadAsync/WaitToWriteAsync).
            if (_cold is { } cold)
            {
                ClaimReadinessLocked(ref cold.ReadWaiters, ref wakeList, error);
                ClaimReadinessLocked(ref cold.WriteWaiters, ref wakeList, error);
                if (IsDrainedLocked())
                {
                    completion = cold.Completion;
                }
            }
        }

        // Outside the lock, in the order served.
        wakeList.WakeAll(Tasklet.CurrentOrNull);
        if (completion is not null)
        {
            Complete(completion, error);
        }

        return true;
    }

    /// <summary>
    /// Reserves closing for <paramref name="owner"/>: from now on <see cref="Close(Exception?)"/> by anyone else
    /// throws. For a channel whose only closer must be its feeder (a view of an STC reader, whose pump may hold an
    /// item that a foreign close would lose). Call before the channel is handed out.
    /// </summary>
    internal void ReserveClose(object owner)
    {
        using (new GateScope(ref _gate))
        {
            ColdLocked().CloseOwner = owner;
        }
    }

    // What a parked receive learns from a close: a plain ReceiveAsync throws (with the error as inner exception); an
    // STC reader's ReadAsync throws STC's exception; an await foreach throws only if there is an error (else the loop
    // ends); a select's case reports IsClosed (and CloseError) instead.
    private Exception? ClosedOutcome(ReceiveCase<T> receiver, Exception? error)
    {
        if (receiver.ThrowsOnClosed)
        {
            return new ChannelClosedException(Strings.ReceiveOnClosed(Describe()), error);
        }

        if (receiver is ReaderReceive<T>)
        {
            return StcCompletion.OperationError(error);
        }

        return error is not null && receiver is EnumeratorReceive<T>
            ? new ChannelClosedException(Strings.ReceiveOnClosed(Describe()), error)
            : null;
    }

    // ---------------------------------------------------------------- core (caller holds _gate)

    /// <summary>
    /// Hands <paramref name="item"/> to a live receiver or buffers it. Caller holds the gate.
    /// Returns false (nothing changed) when it would block. <paramref name="partner"/> is the claimed receiver to wake.
    /// </summary>
    /// <exception cref="ChannelClosedException">The channel is closed.</exception>
    internal bool TrySendLocked(T item, out Waiter? partner)
    {
        AssertInvariants();
        if (_closed)
        {
            throw new ChannelClosedException(Strings.SendOnClosed(Describe()), CloseError);
        }

        SelectCase? node = _receivers.DequeueAndClaim();
        if (node is not null)
        {
            // A receiver is parked: the item goes straight to it, never through the buffer (no barging).
            var receiver = Unsafe.As<ReceiveCase<T>>(node); // _receivers holds only this channel's receive nodes
            receiver.Value = item;
            receiver.IsClosed = false;
            partner = node._waiter!;
            partner.SetOutcome(node._caseIndex, null);
            return true;
        }

        partner = null;
        if (_capacity != 0 && (_capacity < 0 || _buffer.Count < _capacity))
        {
            _buffer.PushBack(item);
            if (_cold is not null)
            {
                ReadableLocked(); // an item to receive: wake the readiness waits (queued only while the buffer was empty)
            }

            return true;
        }

        return false;
    }

    /// <summary>
    /// Takes the next item: a pending exception, a buffered item (refilling the buffer from a blocked sender), a
    /// blocked sender's item, or "closed and drained". Caller holds the gate. Returns false when it would block.
    /// </summary>
    internal bool TryReceiveLocked(out T value, out bool closed, out Waiter? partner, out Exception? error)
    {
        AssertInvariants();
        partner = null;
        closed = false;
        error = null;
        if (_errorCount > 0)
        {
            value = default!;
            error = _errors!.Dequeue();
            _errorCount = _errors.Count;
            if (_closed)
            {
                CompleteIfDrainedLocked(); // the last pending exception of a closed channel may have been its last content
            }

            return true;
        }

        if (_buffer.Count > 0)
        {
            value = _buffer.PopFront();
            SelectCase? sender = _senders.DequeueAndClaim();
            if (sender is not null)
            {
                _buffer.PushBack(TakeItem(sender));
                partner = sender._waiter!;
            }
            else if (_cold is not null)
            {
                SlotFreedLocked(); // room for a send, or (closed) maybe drained
            }

            return true;
        }

        SelectCase? node = _senders.DequeueAndClaim();
        if (node is not null)
        {
            value = TakeItem(node);
            partner = node._waiter!;
            return true;
        }

        value = default!;
        if (_closed)
        {
            closed = true;
            return true;
        }

        return false;
    }

    // Precondition: the caller claimed node's wait (DequeueAndClaim). Takes the item and records the outcome.
    private static T TakeItem(SelectCase node)
    {
        var sender = Unsafe.As<SendCase<T>>(node); // _senders holds only this channel's send nodes
        T item = sender.Item;
        DropItem(node);
        node._waiter!.SetOutcome(node._caseIndex, null);
        return item;
    }

    // An internal send node (not a user's SendCase) lets go of its item once the item was delivered or will never be:
    // the cached node outlives the send, and would otherwise keep the item alive.
    private static void DropItem(SelectCase node)
    {
        if (node is SendOperation<T> or WriterSend<T>)
        {
            Unsafe.As<SendCase<T>>(node).Item = default!;
        }
    }

    // Lock-free hints for Select.Try. Every field read here is written only under _gate, and each read is volatile,
    // so a reader that brackets them with two equal even reads of the gate's sequence (Select.Try does) has read one
    // quiescent state: if that state is "not ready", the case was not ready at an instant inside the call. Without
    // the bracket they are plain hints. A queued node may be stale, so "ready" is only "maybe"; the locked path decides.
    internal bool MaybeSendReady()
        => Volatile.Read(ref _closed) || !_receivers.IsEmptyVolatile || _capacity < 0 || _buffer.VolatileCount < _capacity;

    internal bool MaybeReceiveReady()
        => Volatile.Read(ref _closed) || _buffer.VolatileCount > 0 || Volatile.Read(ref _errorCount) > 0 || !_senders.IsEmptyVolatile;

    // Locked readiness, for select's count of ready cases: exact for the buffer, the errors and close; a live node may
    // still be claimed by someone else before the case executes, which TryExecuteLocked then reports.
    internal bool IsSendReadyLocked() => _closed || _receivers.HasLive() || _capacity < 0 || _buffer.Count < _capacity;

    internal bool IsReceiveReadyLocked() => _closed || _buffer.Count > 0 || _errorCount > 0 || _senders.HasLive();

    /// <summary>
    /// Queues a blocked send (a plain send's node or a select's case). Caller holds the gate. A blocked sender is
    /// something to receive (on an unbuffered channel the only thing; a buffered one is full, so readable already).
    /// </summary>
    internal void EnqueueSenderLocked(SelectCase node, Waiter waiter, long generation, int caseIndex)
    {
        _senders.Enqueue(node, waiter, generation, caseIndex);
        if (_cold is not null)
        {
            ReadableLocked();
        }
    }

    /// <summary>
    /// Queues a blocked receive. Caller holds the gate. A blocked receiver takes a send (on an unbuffered channel the
    /// only way to send; a buffered one is empty, so writable already).
    /// </summary>
    internal void EnqueueReceiverLocked(SelectCase node, Waiter waiter, long generation, int caseIndex)
    {
        _receivers.Enqueue(node, waiter, generation, caseIndex);
        if (_cold is not null)
        {
            WritableLocked();
        }
    }

    void IWaitSource.WithdrawAll(SelectCase node, ReadOnlySpan<RegistrationSlot> others, Waiter waiter, long generation)
        => WaitSources.WithdrawAll(this, node, others, waiter, generation);

    void IWaitSource.RemoveLocked(SelectCase node)
    {
        // A channel's nodes are its SendCase<T>s (_isSend), its ReceiveCase<T>s, and its readiness waits.
        if (node._isSend)
        {
            _senders.Remove(node);
            DropItem(node); // a send that ended without delivering (kill, timeout, cancellation)
        }
        else if (node is not ReadinessWait)
        {
            _receivers.Remove(node);
        }
        else
        {
            // A readiness wait ended by cancellation, kill or timeout; it exists only with the cold state.
            var readiness = Unsafe.As<ReadinessWait>(node); // tested just above
            ColdState cold = _cold!;
            if (readiness.ForSend)
            {
                cold.WriteWaiters.Remove(node);
            }
            else
            {
                cold.ReadWaiters.Remove(node);
            }
        }
    }

    /// <inheritdoc cref="IWaitSource.Describe"/>
    internal string Describe()
    {
        string kind = _capacity switch
        {
            0 => "unbuffered",
            < 0 => "unbounded",
            _ => $"capacity {_capacity}",
        };
        string name = Name is null ? $"#{_id}" : $"'{Name}'";
        return $"channel {name} ({kind}, {_buffer.Count} buffered)";
    }

    string IWaitSource.Describe() => Describe();

    // ---------------------------------------------------------------- helpers

    private void InitExternal()
    {
        // A channel made outside a tasklet is reachable by code the scheduler cannot see (DESIGN.md, "Deadlock").
        Tasklet? current = Tasklet.CurrentOrNull;
        _createdOutside = current is null;
        if (current is not null)
        {
            // The maker holds it first: its scheduler is a party (and made outside Run(), it is an outside party).
            Scheduler scheduler = current.Scheduler;
            _external = !scheduler.IsTrackedForDeadlock;
            _parties.Record(scheduler);
            if (_external)
            {
                Scheduler.OpenDeadlockGroup(scheduler);
            }
        }
    }

    void IWaitSource.MarkUsedBy(Tasklet? current)
    {
        if (current is null)
        {
            if (!_external)
            {
                BecomeExternal();
            }

            return;
        }

        MarkUsedByTasklet(current.Scheduler);
    }

    /// <summary>A use by a tasklet of <paramref name="scheduler"/>: a party, and an outside one if it is not inside Run().</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void MarkUsedByTasklet(Scheduler scheduler)
    {
        // The steady state writes nothing: the first party again, inside Run() or already reachable from outside.
        if (!_parties.IsFirst(scheduler) || (!_external && !scheduler.IsTrackedForDeadlock))
        {
            MarkUsedByTaskletSlow(scheduler);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void MarkUsedByTaskletSlow(Scheduler scheduler)
    {
        if (!_external && !scheduler.IsTrackedForDeadlock)
        {
            BecomeExternal();
        }

        // A new party whose channel plain code holds (made outside a tasklet, outside a deterministic scheduler's
        // closed world, or used from outside) meets the outside world through it: its group is open. Record's CAS is
        // a full fence before _external is read here (the other half of BecomeExternal's argument).
        if (_parties.Record(scheduler) && (_external || (_createdOutside && !scheduler.IsDeterministic)))
        {
            Scheduler.OpenDeadlockGroup(scheduler);
        }
    }

    /// <summary>
    /// A party outside the tracked tasklets used the channel: it is reachable from outside for good, and every party's
    /// group is open. The flag is published before the parties are read, with a full fence between (a concurrent new
    /// party does the mirror image: its CAS, then the flag), so each new party is opened by one side or the other.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void BecomeExternal()
    {
        _external = true;
        Interlocked.MemoryBarrier();
        _parties.OpenAll();
    }

    /// <summary>Counts the operation for metrics and records the party (<see cref="MarkUsedByTasklet"/>; plain code makes the channel externally reachable).</summary>
    private void MarkExternalIfNeeded(Tasklet? current)
    {
        if (current is null)
        {
            TaskletsMetrics.ExternalChannelOperation();
            if (!_external)
            {
                BecomeExternal();
            }

            return;
        }

        Scheduler scheduler = current.Scheduler;
        scheduler.CountChannelOperation();
        MarkUsedByTasklet(scheduler);
    }

    private static void EnsureMayBlock(string method, string asyncMethod)
    {
        if (Tasklet.CurrentOrNull is not null || Scheduler.CurrentOrNull is not null)
        {
            ThrowHelper.ThrowInvalidOperation(Strings.BlockingInTasklet(method, asyncMethod));
        }
    }

    [Conditional("DEBUG")]
    private void AssertInvariants()
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        Debug.Assert(_capacity < 0 || _buffer.Count <= _capacity);
        Debug.Assert(_buffer.Count == 0 || !_receivers.HasLive(), "items buffered while a receiver waits");
        Debug.Assert(_afterRelease is null, "work left for the release of the gate outlived the release");
        if (_cold is { } cold)
        {
            Debug.Assert(!cold.ReadWaiters.HasLive() || !IsReceiveReadyLocked(), "a read-readiness wait is parked while the channel is readable");
            Debug.Assert(!cold.WriteWaiters.HasLive() || !IsSendReadyLocked(), "a write-readiness wait is parked while the channel is writable");
        }
    }
}
