using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using System.Text.Json;

namespace Buddy.Tests.Service;

/// <summary>
/// Packs the solution into a temporary feed once (as the README tells users to), under a version of
/// its own so no package cache can answer for it, then uses the packages as a new user would.
/// </summary>
public sealed class PackedFeed : IDisposable
{
    public PackedFeed()
    {
        Root = Directory.CreateTempSubdirectory("buddy-packages-").FullName;
        Feed = Path.Combine(Root, "feed");
        Version = $"0.1.0-test.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
        string repository = Metadata("RepositoryRoot");
        // The projects are built already (the tests reference them); packing must not rebuild under running tests.
        // Restoring is needed still: libbuddy's project is no test's reference.
        Result = Shell.Run("dotnet", repository, TimeSpan.FromMinutes(5), "restore", Path.Combine(repository, "Allocator.sln"), "-nologo", "-v", "quiet");
        if (Result.ExitCode != 0) return;
        Result = Shell.Run("dotnet", repository, TimeSpan.FromMinutes(10),
            "pack", Path.Combine(repository, "Allocator.sln"), "-c", Metadata("Configuration"), "--no-build", "-o", Feed,
            $"-p:PackageVersion={Version}", "-nologo", "-v", "quiet");
    }

    public string Root { get; }
    public string Feed { get; }
    public string Version { get; }
    public Shell.Output Result { get; }

    /// <summary>Writes a nuget.config beside <paramref name="directory"/> that adds the feed to the user's sources.</summary>
    public Dictionary<string, string?> UseFeed(string directory)
    {
        File.WriteAllText(Path.Combine(directory, "nuget.config"), $"""
            <configuration>
              <packageSources>
                <add key="buddy-test-feed" value="{Feed}" />
              </packageSources>
            </configuration>
            """);
        // A package cache of its own: nothing restored earlier can stand in for these packages.
        return new() { ["NUGET_PACKAGES"] = Path.Combine(Root, "packages"), ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["DOTNET_NOLOGO"] = "1" };
    }

    public void Dispose() => Directory.Delete(Root, recursive: true);

    internal static string Metadata(string key) => typeof(PackedFeed).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;
}

public sealed class PackageTests(PackedFeed packages) : IClassFixture<PackedFeed>
{
    [Fact]
    public void Dotnet_pack_makes_every_package()
    {
        Assert.True(packages.Result.ExitCode == 0, packages.Result.Text);
        string[] made = Directory.GetFiles(packages.Feed, "*.nupkg").Select(Path.GetFileName).ToArray()!;
        foreach (string id in Ids)
            Assert.Contains($"{id}.{packages.Version}.nupkg", made);
        Assert.Equal(Ids.Length, made.Length);
    }

    private static readonly string[] Ids =
        ["Buddy.Interop", "Buddy.Allocator", "Buddy.Reporting", "Buddy.Hosting", "Buddy.AspNetCore", "Buddy.OpenTelemetry", "Buddy.Arrow", "Buddy.Native", "Buddy.Tool"];

    [Fact]
    public void Every_package_carries_its_license_readme_and_description_and_the_libraries_their_symbols()
    {
        Assert.True(packages.Result.ExitCode == 0, packages.Result.Text);
        foreach (string id in Ids)
        {
            using ZipArchive package = ZipFile.OpenRead(Path.Combine(packages.Feed, $"{id}.{packages.Version}.nupkg"));
            using var reader = new StreamReader(package.GetEntry($"{id}.nuspec")!.Open());
            var nuspec = System.Xml.Linq.XDocument.Parse(reader.ReadToEnd());
            string Field(string name) => nuspec.Descendants().FirstOrDefault(e => e.Name.LocalName == name)?.Value ?? "";
            Assert.Equal("MIT", Field("license"));
            Assert.Equal("README.md", Field("readme"));
            Assert.NotNull(package.GetEntry("README.md"));
            Assert.False(string.IsNullOrWhiteSpace(Field("description")), $"{id} has no description");
            Assert.Contains("allocator", Field("tags"));
            // The libraries' symbols travel in a symbol package beside them; libbuddy.so is native and has none.
            if (id != "Buddy.Native") Assert.True(File.Exists(Path.Combine(packages.Feed, $"{id}.{packages.Version}.snupkg")), $"{id} has no symbol package");
        }
    }

    [Fact]
    public void A_new_service_builds_and_runs_against_the_packages()
    {
        Assert.True(packages.Result.ExitCode == 0, packages.Result.Text);
        string app = Directory.CreateDirectory(Path.Combine(packages.Root, "service")).FullName;
        File.WriteAllText(Path.Combine(app, "service.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk.Web">
              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Buddy.AspNetCore" Version="{packages.Version}" />
              </ItemGroup>
            </Project>
            """);
        // The README's quick start, then one 1 MiB response through Kestrel's Buddy buffers.
        File.WriteAllText(Path.Combine(app, "Program.cs"), """
            using Buddy;

            var builder = WebApplication.CreateBuilder(args);
            builder.WebHost.UseBuddyMemoryPool();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            app.MapGet("/", () => Results.Bytes(new byte[1 << 20]));
            await app.StartAsync();
            using var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
            byte[] body = await client.GetByteArrayAsync("/");
            var stats = app.Services.GetRequiredService<BuddyArena>().GetStatistics();
            Console.WriteLine($"ok {body.Length} {stats.Allocations}");
            await app.StopAsync();
            """);
        Dictionary<string, string?> environment = packages.UseFeed(app);

        Shell.Output run = Shell.Run("dotnet", app, TimeSpan.FromMinutes(5), environment, "run", "-c", "Release");

        Assert.True(run.ExitCode == 0, run.Text);
        string[] ok = run.Stdout.Split('\n').Single(l => l.StartsWith("ok ", StringComparison.Ordinal)).Split(' ');
        Assert.Equal((1 << 20).ToString(), ok[1]);
        Assert.True(long.Parse(ok[2]) >= 256, "Kestrel rented the response's 4 KiB blocks from the arena: " + run.Text);
    }

    [Fact]
    public void The_tool_installs_from_the_package_and_runs()
    {
        Assert.True(packages.Result.ExitCode == 0, packages.Result.Text);
        string tools = Path.Combine(packages.Root, "tools");
        Dictionary<string, string?> environment = packages.UseFeed(packages.Root);

        Shell.Output install = Shell.Run("dotnet", packages.Root, TimeSpan.FromMinutes(5), environment,
            "tool", "install", "Buddy.Tool", "--version", packages.Version, "--tool-path", tools, "--add-source", packages.Feed);
        Assert.True(install.ExitCode == 0, install.Text);

        string buddy = Path.Combine(tools, OperatingSystem.IsWindows() ? "buddy.exe" : "buddy");
        Shell.Output stress = Shell.Run(buddy, packages.Root, TimeSpan.FromMinutes(2), environment, "stress", "--seconds", "1", "--threads", "2", "--arena", "64", "--json");
        Assert.True(stress.ExitCode == 0, stress.Text);
        using JsonDocument result = JsonDocument.Parse(stress.Stdout);
        Assert.True(result.RootElement.GetProperty("ops").GetInt64() > 0);
        Assert.Equal(0, result.RootElement.GetProperty("lost_pages").GetInt64());
    }

    [Fact]
    public void The_native_package_carries_libbuddy_and_its_header_and_a_C_program_links_and_runs()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "libbuddy.so is built for Linux.");
        Assert.True(packages.Result.ExitCode == 0, packages.Result.Text);
        string native = Path.Combine(packages.Root, "native");
        ZipFile.ExtractToDirectory(Path.Combine(packages.Feed, $"Buddy.Native.{packages.Version}.nupkg"), native);
        string library = Path.Combine(native, "runtimes", "linux-x64", "native", "libbuddy.so");
        Assert.True(File.Exists(library), "runtimes/linux-x64/native/libbuddy.so");
        Assert.True(File.Exists(Path.Combine(native, "include", "buddy.h")), "include/buddy.h");
        string? compiler = new[] { "cc", "gcc", "clang" }.FirstOrDefault(c => Shell.Run("sh", native, TimeSpan.FromSeconds(10), "-c", $"command -v {c}").ExitCode == 0);
        Assert.SkipWhen(compiler is null, "No C compiler on this machine (scripts/test.sh installs one).");

        File.WriteAllText(Path.Combine(native, "main.c"), """
            #include <stdio.h>
            #include "buddy.h"
            int main(void) {
                buddy_options options = {0};
                options.struct_size = sizeof options;
                options.size = 8u << 20;
                buddy_arena* arena = NULL;
                void* block = NULL;
                if (buddy_arena_create(&options, &arena) != BUDDY_OK) return 1;
                if (buddy_alloc(arena, 1 << 20, &block) != BUDDY_OK) return 2;
                ((char*)block)[0] = 1;
                if (buddy_free(arena, block) != BUDDY_OK) return 3;
                if (buddy_free(arena, block) != BUDDY_E_INVALID_POINTER) return 4;
                if (buddy_arena_destroy(arena) != BUDDY_OK) return 5;
                puts("ok");
                return 0;
            }
            """);
        string directory = Path.GetDirectoryName(library)!;
        Shell.Output build = Shell.Run(compiler!, native, TimeSpan.FromMinutes(1), "main.c", "-Iinclude", $"-L{directory}", "-lbuddy", $"-Wl,-rpath,{directory}", "-o", "main");
        Assert.True(build.ExitCode == 0, build.Text);
        Shell.Output run = Shell.Run(Path.Combine(native, "main"), native, TimeSpan.FromMinutes(1));
        Assert.True(run.ExitCode == 0, run.Text);
        Assert.Equal("ok", run.Stdout.Trim());
    }
}

/// <summary>Runs a command to its end, with its output kept for the assertion messages.</summary>
public static class Shell
{
    public sealed record Output(int ExitCode, string Stdout, string Stderr)
    {
        public string Text => $"exit {ExitCode}\n{Stdout}\n{Stderr}";
    }

    public static Output Run(string file, string directory, TimeSpan timeout, params string[] arguments) => Run(file, directory, timeout, null, arguments);

    public static Output Run(string file, string directory, TimeSpan timeout, Dictionary<string, string?>? environment, params string[] arguments)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in arguments) start.ArgumentList.Add(a);
        foreach (var (key, value) in environment ?? []) start.Environment[key] = value;
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} ran longer than {timeout}");
        }
        return new Output(process.ExitCode, stdout.Result, stderr.Result);
    }
}
