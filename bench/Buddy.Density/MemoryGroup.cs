namespace Buddy.Density;

/// <summary>A child of this process's cgroup v1 memory group, with a limit, for one run of workers.</summary>
internal sealed class MemoryGroup : IDisposable
{
    private const string Root = "/sys/fs/cgroup/memory";

    private MemoryGroup(string path) => Path = path;

    public string Path { get; }

    /// <summary>Bytes charged to the group now, and the most it was charged since it was made.</summary>
    public long Usage => ReadLong("memory.usage_in_bytes");
    public long MaxUsage => ReadLong("memory.max_usage_in_bytes");

    /// <summary>Processes the kernel killed because the group hit its limit.</summary>
    public long OomKills => File.ReadLines(System.IO.Path.Combine(Path, "memory.oom_control"))
        .Select(l => l.Split(' ')).Where(f => f is ["oom_kill", _]).Select(f => long.Parse(f[1])).FirstOrDefault();

    /// <summary>The group; throws with the reason when it cannot be made on this machine.</summary>
    public static MemoryGroup Create(long limit)
    {
        string? own = File.Exists("/proc/self/cgroup")
            ? File.ReadLines("/proc/self/cgroup").Select(l => l.Split(':', 3)).FirstOrDefault(f => f.Length == 3 && f[1] == "memory")?[2]
            : null;
        if (own is null || !Directory.Exists(Root + own))
            throw new InvalidOperationException($"cgroup v1's memory controller is not mounted at {Root}: the density benchmark needs it to cap its workers.");
        string path = $"{Root}{own.TrimEnd('/')}/buddy-density-{Environment.ProcessId}-{Guid.NewGuid():N}";
        Directory.CreateDirectory(path);
        var group = new MemoryGroup(path);
        try
        {
            File.WriteAllText(System.IO.Path.Combine(path, "memory.limit_in_bytes"), limit.ToString());
            // Without swap the limit is hard: anonymous memory over it can only be OOM-killed.
            File.WriteAllText(System.IO.Path.Combine(path, "memory.swappiness"), "0");
            return group;
        }
        catch
        {
            group.Dispose();
            throw;
        }
    }

    private long ReadLong(string file) => long.Parse(File.ReadAllText(System.IO.Path.Combine(Path, file)).Trim());

    public void Dispose()
    {
        // Empty once its processes have exited; the kernel may take a moment to agree.
        SpinWait.SpinUntil(() =>
        {
            try
            {
                Directory.Delete(Path);
                return true;
            }
            catch (IOException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(10));
    }
}
