using System.Text;
using Buddy.Interop;
using Microsoft.Win32.SafeHandles;

namespace Buddy.Reporting.Pressure;

/// <summary>
/// A pressure stall information trigger (Documentation/accounting/psi.rst): written to a PSI file,
/// it makes the kernel raise POLLPRI when tasks stalled on memory for <c>stallUs</c> within a window
/// of <c>windowUs</c>. A thread of its own waits in poll() and calls back; unprivileged triggers need
/// windows that are multiples of 2 s.
/// </summary>
internal sealed unsafe class PsiTrigger : IDisposable
{
    private readonly SafeFileHandle file;
    private readonly Action fired;
    private volatile bool stopping;

    private PsiTrigger(SafeFileHandle file, string path, Action fired)
    {
        this.file = file;
        this.fired = fired;
        Path = path;
        new Thread(Watch) { IsBackground = true, Name = "Buddy pressure trigger" }.Start();
    }

    public string Path { get; }

    /// <summary>Arms a trigger on <paramref name="path"/>; throws when the kernel refuses it (no PSI, or no permission).</summary>
    public static PsiTrigger Arm(string path, long stallUs, long windowUs, Action fired)
    {
        SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        try
        {
            // The kernel takes the trigger from one write, terminated by NUL.
            byte[] trigger = Encoding.ASCII.GetBytes($"some {stallUs} {windowUs}\0");
            RandomAccess.Write(file, trigger, 0);
            return new PsiTrigger(file, path, fired);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Waits in bounded polls and owns the file: Dispose only asks it to stop, so stopping a reporter
    /// never waits on this thread, and the trigger goes with the file when the thread ends.
    /// </summary>
    private void Watch()
    {
        try
        {
            var poll = new Libc.PollFd { Fd = (int)file.DangerousGetHandle(), Events = Libc.PollPriority };
            while (!stopping)
            {
                poll.Revents = 0;
                if (Libc.Poll(&poll, 1, 100) <= 0 || stopping) continue;
                if ((poll.Revents & Libc.PollError) != 0) return;
                if ((poll.Revents & Libc.PollPriority) != 0) fired();
            }
        }
        finally
        {
            file.Dispose();
        }
    }

    public void Dispose() => stopping = true;
}
