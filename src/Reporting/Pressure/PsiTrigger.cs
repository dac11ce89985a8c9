using System.Runtime.InteropServices;
using System.Text;
using Buddy.Interop;
using Microsoft.Win32.SafeHandles;

namespace Buddy.Reporting.Pressure;

/// <summary>
/// Pressure stall information triggers (Documentation/accounting/psi.rst): written to a PSI file, a
/// trigger makes the kernel raise POLLPRI when tasks stalled on memory for <c>stallUs</c> within a
/// window of <c>windowUs</c> (unprivileged triggers need windows that are multiples of 2 s). One
/// trigger per file serves the whole process: armed by the first subscriber, it stays armed for the
/// process's lifetime with one thread waiting in poll(), so creating and destroying arenas opens
/// and closes nothing. Subscribers come and go.
/// </summary>
internal static unsafe class PsiTriggers
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, Watcher?> ByPath = [];

    /// <summary>
    /// Calls <paramref name="fired"/> on each stall event of <paramref name="path"/> until the returned
    /// subscription is disposed; null when the kernel refuses the trigger (no PSI, or no permission).
    /// </summary>
    public static IDisposable? Subscribe(string path, long stallUs, long windowUs, Action fired)
    {
        lock (Gate)
        {
            if (!ByPath.TryGetValue(path, out Watcher? watcher))
            {
                watcher = Watcher.TryArm(path, stallUs, windowUs);
                ByPath[path] = watcher;
            }
            return watcher?.Add(fired);
        }
    }

    private sealed class Watcher
    {
        private readonly SafeFileHandle file;
        private readonly Lock gate = new();
        private Action[] subscribers = [];

        private Watcher(SafeFileHandle file)
        {
            this.file = file;
            new Thread(Watch) { IsBackground = true, Name = "Buddy pressure trigger" }.Start();
        }

        public static Watcher? TryArm(string path, long stallUs, long windowUs)
        {
            SafeFileHandle file;
            try
            {
                file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }
            try
            {
                // The kernel takes the trigger from one write, terminated by NUL.
                RandomAccess.Write(file, Encoding.ASCII.GetBytes($"some {stallUs} {windowUs}\0"), 0);
                return new Watcher(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                file.Dispose();
                return null;
            }
        }

        public IDisposable Add(Action fired)
        {
            lock (gate) subscribers = [.. subscribers, fired];
            return new Subscription(this, fired);
        }

        private void Remove(Action fired)
        {
            lock (gate) subscribers = subscribers.Where(s => !ReferenceEquals(s, fired)).ToArray();
        }

        private void Watch()
        {
            var poll = new Libc.PollFd { Fd = (int)file.DangerousGetHandle(), Events = Libc.PollPriority };
            while (true)
            {
                poll.Revents = 0;
                // Only an interrupted wait is retried: any other error would fail again at once, so the
                // watcher ends rather than spin, and the polled sources still see the pressure.
                if (Libc.Poll(&poll, 1, -1) < 0)
                {
                    if (Marshal.GetLastPInvokeError() == Libc.Interrupted) continue;
                    return;
                }
                if ((poll.Revents & Libc.PollError) != 0) return;
                if ((poll.Revents & Libc.PollPriority) == 0) continue;
                foreach (Action fired in Volatile.Read(ref subscribers)) fired();
            }
        }

        private sealed class Subscription(Watcher watcher, Action fired) : IDisposable
        {
            private int disposed;

            public void Dispose()
            {
                if (Interlocked.Exchange(ref disposed, 1) == 0) watcher.Remove(fired);
            }
        }
    }
}
