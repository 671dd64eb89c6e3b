using System.Diagnostics;

namespace Tasklets.Internal;

/// <summary>One pending timer: ends a wait (sleep, select timeout), expires a timeout scope, or fires a virtual-clock ITimer.</summary>
internal readonly struct TimerEntry
{
    public TimerEntry(long due, long sequence, Waiter? waiter, long generation, int firedIndex, TimeoutScope? scope, VirtualTimer? timer = null)
    {
        Due = due;
        Sequence = sequence;
        Waiter = waiter;
        Generation = generation;
        FiredIndex = firedIndex;
        Scope = scope;
        Timer = timer;
    }

    public long Due { get; }

    /// <summary>Tie-breaker: timers due at the same instant fire in the order they were set (determinism).</summary>
    public long Sequence { get; }

    public Waiter? Waiter { get; }

    public long Generation { get; }

    public int FiredIndex { get; }

    public TimeoutScope? Scope { get; }

    /// <summary>A virtual-clock timer whose schedule <see cref="Generation"/> this entry is, or null.</summary>
    public VirtualTimer? Timer { get; }

    /// <summary>
    /// False once the wait it would end is over, its scope was left (or died with its tasklet), or its timer changed:
    /// firing it would do nothing. Monotone: an entry read dead stays dead (a wait's generation never parks again, a
    /// disposed scope or a dead tasklet stays so, a timer's replaced schedule never comes back), so the owner may drop
    /// it on that read; a live read may be stale when another thread has just ended the wait, whose wake-up then
    /// reaches the owner through its inbox.
    /// </summary>
    public bool IsLive => Timer is not null ? Timer.IsArmedWith(Generation) : Scope is not null ? Scope.CanExpire : Waiter!.IsParkedWith(Generation);

    public bool FiresBefore(in TimerEntry other) => Due < other.Due || (Due == other.Due && Sequence < other.Sequence);
}

/// <summary>
/// A binary min-heap of <see cref="TimerEntry"/> by (due, sequence). Scheduler thread only.
/// </summary>
/// <remarks>
/// Entries are not removed when their wait ends early (a partner won a select before its timeout, a kill ended a
/// sleep, a scope was left): the party that ends a wait may be on another thread, and the heap is the scheduler
/// thread's, so ending a wait stays a claim on the waiter and never touches the heap. Dead entries are skipped when
/// they fire, dropped from the top by the scheduler before it asks for the next due timer (so the idle loop neither
/// waits for one nor takes one for a party that may still wake a tasklet), and <see cref="Compact"/> drops them in
/// bulk once the heap has doubled since the last compaction, so a hot loop of selects with timeouts does not grow
/// the heap without bound.
/// </remarks>
internal struct TimerHeap
{
    private TimerEntry[] _items;
    private int _count;
    private int _compactAt;

    public TimerHeap()
    {
        _items = new TimerEntry[16];
        _compactAt = 1024;
    }

    public readonly int Count => _count;

    public readonly ref readonly TimerEntry Peek() => ref _items[0];

    public void Push(in TimerEntry entry)
    {
        if (_count >= _compactAt)
        {
            Compact();
        }

        if (_count == _items.Length)
        {
            Array.Resize(ref _items, _items.Length * 2);
        }

        int i = _count++;
        while (i > 0)
        {
            int parent = (i - 1) / 2;
            if (!entry.FiresBefore(_items[parent]))
            {
                break;
            }

            _items[i] = _items[parent];
            i = parent;
        }

        _items[i] = entry;
    }

    public TimerEntry Pop()
    {
        Debug.Assert(_count > 0);
        TimerEntry top = _items[0];
        TimerEntry last = _items[--_count];
        _items[_count] = default;
        if (_count > 0)
        {
            SiftDown(0, last);
        }

        return top;
    }

    /// <summary>Drops the entries that can no longer fire anything, then re-heapifies.</summary>
    public void Compact()
    {
        int kept = 0;
        for (int i = 0; i < _count; i++)
        {
            if (_items[i].IsLive)
            {
                _items[kept++] = _items[i];
            }
        }

        Array.Clear(_items, kept, _count - kept);
        _count = kept;
        for (int i = (_count / 2) - 1; i >= 0; i--)
        {
            SiftDown(i, _items[i]);
        }

        _compactAt = Math.Max(1024, _count * 2);
    }

    private void SiftDown(int i, TimerEntry entry)
    {
        while (true)
        {
            int child = (2 * i) + 1;
            if (child >= _count)
            {
                break;
            }

            if (child + 1 < _count && _items[child + 1].FiresBefore(_items[child]))
            {
                child++;
            }

            if (!_items[child].FiresBefore(entry))
            {
                break;
            }

            _items[i] = _items[child];
            i = child;
        }

        _items[i] = entry;
    }
}
