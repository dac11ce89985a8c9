using System.Globalization;

namespace Buddy.Reporting.Pressure;

/// <summary>
/// The memory controller of the process's cgroup, v2 (<c>memory.max</c>, <c>memory.high</c>,
/// <c>memory.current</c>, <c>memory.events</c>) or v1 (<c>memory.limit_in_bytes</c>,
/// <c>memory.usage_in_bytes</c>). The limit is the tightest of the group and its ancestors.
/// </summary>
internal sealed class CgroupMemory
{
    /// <summary>Limits at or above this are "no limit" (v1 writes PAGE_COUNTER_MAX pages, v2 writes "max").</summary>
    private const long Unlimited = 1L << 60;

    private readonly string[] hierarchy;
    private long eventsSeen = -1;

    private CgroupMemory(string directory, string mountRoot, bool v2)
    {
        Directory = directory;
        IsV2 = v2;
        var dirs = new List<string>();
        for (string? d = directory; d is not null && d.Length >= mountRoot.Length; d = Path.GetDirectoryName(d)) dirs.Add(d);
        hierarchy = [.. dirs];
    }

    /// <summary>The group's directory in the cgroup file system.</summary>
    public string Directory { get; }

    public bool IsV2 { get; }

    /// <summary>The group of a directory (tests point it at a child group they made); null when it is not a memory cgroup.</summary>
    public static CgroupMemory? ForDirectory(string directory, string mountRoot)
    {
        if (File.Exists(Path.Combine(directory, "memory.current"))) return new CgroupMemory(directory, mountRoot, v2: true);
        if (File.Exists(Path.Combine(directory, "memory.usage_in_bytes"))) return new CgroupMemory(directory, mountRoot, v2: false);
        return null;
    }

    /// <summary>This process's memory cgroup: v2 where its controller is there, else v1; null when neither is mounted.</summary>
    public static CgroupMemory? OfThisProcess()
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            string[] groups = File.ReadAllLines("/proc/self/cgroup");
            string[] mounts = File.ReadAllLines("/proc/self/mountinfo");
            foreach (string mount in mounts)
            {
                // "36 25 0:31 / /sys/fs/cgroup rw,... - cgroup2 cgroup2 rw": root, mount point, then the type after " - ".
                string[] fields = mount.Split(' ');
                int dash = Array.IndexOf(fields, "-");
                if (dash < 0 || dash + 1 >= fields.Length) continue;
                bool v2 = fields[dash + 1] == "cgroup2";
                bool v1Memory = fields[dash + 1] == "cgroup" && fields.Length > dash + 3 && fields[dash + 3].Split(',').Contains("memory");
                if (!v2 && !v1Memory) continue;
                string? path = groups.Select(g => g.Split(':', 3)).Where(g => g.Length == 3 && (v2 ? g[0] == "0" && g[1] == "" : g[1].Split(',').Contains("memory")))
                    .Select(g => g[2]).FirstOrDefault();
                if (path is null) continue;
                string root = fields[3], mountPoint = fields[4];
                string relative = path.StartsWith(root, StringComparison.Ordinal) ? path[root.Length..] : path;
                string directory = Path.Join(mountPoint, relative).TrimEnd('/');
                if (ForDirectory(directory, mountPoint) is { } found) return found;
            }
        }
        catch (IOException)
        {
            // No /proc, or the group went away meanwhile: no cgroup source.
        }
        catch (UnauthorizedAccessException)
        {
        }
        return null;
    }

    /// <summary>Bytes charged to the group now.</summary>
    public long Usage() => ReadBytes(Path.Combine(Directory, IsV2 ? "memory.current" : "memory.usage_in_bytes")) ?? 0;

    /// <summary>The tightest limit of the group and its ancestors (v2: the lower of max and high); null when there is none.</summary>
    public long? Limit()
    {
        long limit = Unlimited;
        foreach (string dir in hierarchy)
        {
            foreach (string file in IsV2 ? ["memory.max", "memory.high"] : new[] { "memory.limit_in_bytes" })
                if (ReadBytes(Path.Combine(dir, file)) is { } value) limit = Math.Min(limit, value);
        }
        return limit >= Unlimited ? null : limit;
    }

    /// <summary>v2 only: true when memory.events counted a high, max or oom event since the last call.</summary>
    public bool NewLimitEvents()
    {
        if (!IsV2) return false;
        string? text = ReadText(Path.Combine(Directory, "memory.events"));
        if (text is null) return false;
        long events = 0;
        foreach (string line in text.Split('\n'))
        {
            string[] kv = line.Split(' ');
            if (kv.Length == 2 && kv[0] is "high" or "max" or "oom" && long.TryParse(kv[1], CultureInfo.InvariantCulture, out long n)) events += n;
        }
        bool fresh = eventsSeen >= 0 && events > eventsSeen;
        eventsSeen = events;
        return fresh;
    }

    /// <summary>The path of the group's PSI file (v2), or null.</summary>
    public string? PressureFile => IsV2 && File.Exists(Path.Combine(Directory, "memory.pressure")) ? Path.Combine(Directory, "memory.pressure") : null;

    private static long? ReadBytes(string path)
    {
        string? text = ReadText(path)?.Trim();
        if (text is null or "max") return null;
        return long.TryParse(text, CultureInfo.InvariantCulture, out long value) ? value : null;
    }

    private static string? ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
