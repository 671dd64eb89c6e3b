namespace Tasklets;

/// <summary>
/// Who runs first after a channel handoff wakes a blocked partner (Stackless's <c>channel.preference</c>).
/// </summary>
public enum ChannelPreference
{
    /// <summary>The tasklet that completed the handoff continues; the woken partner is queued at the back.</summary>
    Neither,

    /// <summary>A sender that wakes a blocked receiver switches to it at once and goes to the back of the run queue.</summary>
    Receiver,

    /// <summary>A receiver that wakes a blocked sender switches to it at once and goes to the back of the run queue.</summary>
    Sender,
}
