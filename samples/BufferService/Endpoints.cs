using System.Buffers;
using System.IO.Pipelines;

namespace BufferService;

internal static class Endpoints
{
    /// <summary>Byte i of every body: what clients check responses and uploads against.</summary>
    public static byte Pattern(long i) => (byte)(i % 251);

    /// <summary>Streams <paramref name="length"/> pattern bytes through Kestrel's response pipe.</summary>
    public static async Task WriteBytes(HttpContext context, int length)
    {
        if (length is < 0 or > 64 << 20)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync("length must be between 0 and 64 MiB\n");
            return;
        }
        context.Response.ContentType = "application/octet-stream";
        context.Response.ContentLength = length;
        PipeWriter writer = context.Response.BodyWriter;
        long written = 0;
        while (written < length)
        {
            Span<byte> span = writer.GetSpan(4096);
            int count = (int)Math.Min(span.Length, length - written);
            for (int i = 0; i < count; i++) span[i] = Pattern(written + i);
            writer.Advance(count);
            written += count;
            if (written % (64 << 10) < count) await writer.FlushAsync(context.RequestAborted);
        }
        await writer.FlushAsync(context.RequestAborted);
    }

    /// <summary>
    /// Buffers the whole upload in Kestrel's request pipe (the pool's memory) before looking at it,
    /// as a handler that parses a whole body does; answers with its length and whether every byte
    /// matched the pattern.
    /// </summary>
    public static async Task<UploadResult> ReadUpload(HttpRequest request)
    {
        PipeReader reader = request.BodyReader;
        while (true)
        {
            ReadResult result = await reader.ReadAsync(request.HttpContext.RequestAborted);
            if (result.IsCompleted)
            {
                UploadResult answer = Check(result.Buffer);
                reader.AdvanceTo(result.Buffer.End);
                return answer;
            }
            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    /// <summary>Buffers and checks the upload as <see cref="ReadUpload"/> does, then streams <paramref name="length"/> bytes back.</summary>
    public static async Task Exchange(HttpContext context, int length)
    {
        UploadResult upload = await ReadUpload(context.Request);
        if (!upload.Intact)
        {
            context.Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
            return;
        }
        await WriteBytes(context, length);
    }

    private static UploadResult Check(ReadOnlySequence<byte> body)
    {
        long position = 0;
        bool intact = true;
        foreach (ReadOnlyMemory<byte> segment in body)
        {
            ReadOnlySpan<byte> span = segment.Span;
            for (int i = 0; i < span.Length; i++) intact &= span[i] == Pattern(position + i);
            position += span.Length;
        }
        return new UploadResult(position, intact);
    }
}

public sealed record UploadResult(long Length, bool Intact);
